"""Constants shared by the tracking tests: their Redis database, known tracking keys, and one
message whose tokens they sign."""

from __future__ import annotations

TEST_REDIS_DB = 9
OLD_KEY = "1:old-tracking-secret-0123456789"
NEW_KEY = "2:new-tracking-secret-0123456789"


MESSAGE = {
    "message_id": "0000632c8b54d53f0a00",
    "transmission_id": "11898458545848322",
    "rcpt_to": "jo@example.com",
    "campaign_id": "spring-sale",
    "template_id": "tpl-1",
    "template_version": 3,
    "transactional": False,
    "rcpt_meta": {"customKey": "customValue", "n": 1},
    "rcpt_tags": ["male", "US"],
}
