"""A generated event set and a brute-force counter over it (the ground truth for rollups)."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import connection, transaction

from analytics.ingest import event_row, events_insert

START = datetime(2024, 3, 1, tzinfo=UTC)
CAMPAIGNS = ["spring-sale", "newsletter", "welcome"]
TEMPLATES = ["tpl-a", "tpl-b"]
DOMAINS = ["gmail.com", "yahoo.com", "example.org", "hotmail.com"]
LINKS = [
    ("Buy now", "https://shop.example.com/buy"),
    ("", "https://example.com/about"),
    ("Docs", "https://docs.example.com/"),
]
BOUNCE_CLASSES = ["10", "30", "90", "20", "21", "24", "40", "60", "70", "100", "50", "54", "25", "80", "1", "99"]


def generate(seed: int = 7, messages: int = 300, days: int = 3) -> list[dict]:
    rng = random.Random(seed)
    events: list[dict] = []
    counter = 0

    def add(kind: str, at: datetime, msg: dict, **fields) -> None:
        nonlocal counter
        counter += 1
        events.append({
            "event_id": str(10_000_000 + counter), "type": kind, "timestamp": at, **msg, **fields,
        })  # fmt: skip

    for number in range(messages):
        domain = rng.choice(DOMAINS)
        campaign = rng.choice(CAMPAIGNS + [""])
        msg = {
            "message_id": f"{number:020x}",
            "transmission_id": str(1000 + number % 7),
            "campaign_id": campaign,
            "template_id": rng.choice(TEMPLATES),
            "template_version": "1",
            "rcpt_to": f"user{number}@{domain}",
            "raw_rcpt_to": f"User{number}@{domain}",
            "rcpt_meta": {"customer": str(number)},
            "rcpt_tags": ["t1"],
            "friendly_from": "News <news@sender.example>",
            "subject": f"Offer {number % 5}",
            "transactional": number % 4 == 0,
        }
        at = START + timedelta(minutes=rng.randrange(days * 24 * 60))
        roll = rng.random()
        if roll < 0.03:
            add("policy_rejection", at, msg, reason="550 policy", error_code="550")
            continue
        if roll < 0.05:
            add("generation_failure", at, msg, reason="render error")
            continue
        if roll < 0.08:
            add("generation_rejection", at, msg, reason="suppressed")
            continue
        add("injection", at, msg)
        for _ in range(rng.choice([0, 0, 1, 2])):
            at += timedelta(minutes=rng.randrange(1, 90))
            add("delay", at, msg, bounce_class="", reason="451 try later")
        fate = rng.random()
        at += timedelta(minutes=rng.randrange(1, 30))
        if fate < 0.12:
            add("bounce", at, msg, bounce_class=rng.choice(BOUNCE_CLASSES), reason="550 no such user", error_code="550")
            continue
        add("delivery", at, msg, ip_address="10.0.0.1")
        for kind, count in (("open", rng.choice([0, 0, 1, 2, 3])), ("initial_open", rng.choice([0, 1, 1, 2]))):
            for _ in range(count):
                add(kind, at + timedelta(minutes=rng.randrange(1, 3000)), msg, user_agent="UA", ip_address="1.2.3.4")
        for _ in range(rng.choice([0, 0, 1, 2, 4])):
            name, url = rng.choice(LINKS)
            add(
                "click", at + timedelta(minutes=rng.randrange(1, 3000)), msg, target_link_name=name, target_link_url=url
            )
        if rng.random() < 0.05:
            add(rng.choice(["list_unsubscribe", "link_unsubscribe"]), at + timedelta(hours=5), msg)
    return events


def land(events: list[dict], *, batch: int = 97, seed: int = 1, shuffle: bool = True) -> None:
    """Land in shuffled batches (so first occurrences often arrive late), twice over the
    first batch to prove re-landing does not double-count."""
    items = list(events)
    if shuffle:
        random.Random(seed).shuffle(items)
    chunks = [items[i : i + batch] for i in range(0, len(items), batch)]
    for chunk in [*chunks, chunks[0]]:
        with transaction.atomic(), connection.cursor() as cursor:
            events_insert(cursor, [event_row(event) for event in chunk], returning=False)


# --- brute force ------------------------------------------------------------------------
def _bounce_family(cls: str) -> str | None:
    for family, classes in {
        "hard": {"10", "30", "90"},
        "soft": {"20", "21", "22", "23", "24", "40", "60", "70", "100"},
        "block": {"50", "51", "52", "53", "54"},
        "admin": {"25", "80"},
        "undetermined": {"1"},
    }.items():
        if cls in classes:
            return family
    return None


def _domain(event: dict) -> str:
    return event["rcpt_to"].rpartition("@")[2].lower()


def event_metrics(event: dict) -> list[str]:
    """The non-unique metrics one event adds to."""
    kind = event["type"]
    out = {
        "injection": ["count_injected", "count_targeted"],
        "policy_rejection": ["count_policy_rejection", "count_rejected", "count_targeted"],
        "generation_failure": ["count_generation_failed", "count_rejected", "count_targeted"],
        "generation_rejection": ["count_generation_rejection", "count_rejected", "count_targeted"],
        "delivery": ["count_accepted", "count_delivered", "count_sent"],
        "bounce": ["count_bounce", "count_inband_bounce", "count_sent"],
        "delay": ["count_delayed"],
        "open": ["count_rendered"],
        "initial_open": ["count_initial_rendered"],
        "click": ["count_clicked"],
        "list_unsubscribe": ["count_unsubscribe"],
        "link_unsubscribe": ["count_unsubscribe"],
    }[kind]
    if kind == "bounce" and _bounce_family(event.get("bounce_class", "")):
        out = [*out, f"count_{_bounce_family(event['bounce_class'])}_bounce"]
    return out


UNIQUE = {
    "count_unique_rendered": {"open"},
    "count_unique_initial_rendered": {"initial_open"},
    "count_unique_clicked": {"click"},
    "count_unique_confirmed_opened": {"open", "initial_open", "click"},
}


def contributions(events: list[dict]) -> list[tuple[dict, str]]:
    """(event, metric) pairs: every counted event, and for unique metrics each message's
    first event of the kind (over all time)."""
    pairs = [(event, metric) for event in events for metric in event_metrics(event)]
    for metric, kinds in UNIQUE.items():
        first: dict[str, dict] = {}
        for event in events:
            if event["type"] in kinds:
                known = first.get(event["message_id"])
                if known is None or event["timestamp"] < known["timestamp"]:
                    first[event["message_id"]] = event
        pairs += [(event, metric) for event in first.values()]
    return pairs


def brute(
    events: list[dict], *, start: datetime, end: datetime, key=None, campaigns=(), templates=(), domains=()
) -> dict:
    """metric totals per key (key(event) -> group) for events in [start, end)."""
    out: dict = defaultdict(lambda: defaultdict(int))
    for event, metric in contributions(events):
        if not start <= event["timestamp"] < end:
            continue
        if campaigns and event["campaign_id"] not in campaigns:
            continue
        if templates and event["template_id"] not in templates:
            continue
        if domains and _domain(event) not in domains:
            continue
        out[key(event) if key else None][metric] += 1
    return out


def brute_links(events: list[dict], *, start: datetime, end: datetime) -> dict:
    """(link_name, url) -> [clicks, unique clicks]."""
    out: dict = defaultdict(lambda: [0, 0])
    first: dict = {}
    for event in events:
        if event["type"] != "click":
            continue
        link = (event["target_link_name"] or event["target_link_url"], event["target_link_url"])
        if start <= event["timestamp"] < end:
            out[link][0] += 1
        k = (event["message_id"], *link)
        if k not in first or event["timestamp"] < first[k]["timestamp"]:
            first[k] = event
    for (_, *link), event in first.items():
        if start <= event["timestamp"] < end:
            out[tuple(link)][1] += 1
    return out


def local_day(event: dict, tz: ZoneInfo) -> str:
    local = event["timestamp"].astimezone(tz)
    return datetime(local.year, local.month, local.day, tzinfo=tz).isoformat(timespec="seconds")
