"""What ``/api/v1/tracking-consent`` requests may hold and what they answer (SPEC A.5,
"Tracking consent"), declared once for the check at the edge and the OpenAPI document
(``engage/api/schema.py``). Shape only: that an address is an email address is
``consent.views``' check."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from consent.models import MAX_EVIDENCE_CHARS, MAX_SOURCE_CHARS
from engage.api.schema import Body, Query, Text
from mailcore.addresses import MAX_EMAIL_LENGTH

#: Records in one bulk PUT.
MAX_BULK_RECORDS = 10_000
MAX_PER_PAGE = 10_000
MAX_CURSOR_CHARS = 1024

ConsentValue = Literal["granted", "denied"]
_Address = Text(MAX_EMAIL_LENGTH, min_length=1)


class ConsentFields(Body):
    """A change of consent: ``consent`` (required), where it was given (``source``) and what was
    shown, where (``evidence``)."""

    consent: ConsentValue
    source: Text(MAX_SOURCE_CHARS) | None = None
    evidence: Text(MAX_EVIDENCE_CHARS) | None = None


class ConsentIn(ConsentFields):
    """One record of a bulk PUT."""

    recipient: _Address


class BulkPut(Body):
    """``{"recipients": [record, ...]}``: at most 10,000, recorded all or nothing, in order
    (of two for one address the later is current)."""

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "recipients": [
                        {"recipient": "ada@example.com", "consent": "denied", "source": "preference centre",
                         "evidence": "unticked 'measure opens' on /prefs, 2025-05-01"},
                        {"recipient": "bob@example.com", "consent": "granted", "source": "signup form"},
                    ]
                }
            ]
        }
    }  # fmt: skip

    recipients: list[ConsentIn] = Field(min_length=1, max_length=MAX_BULK_RECORDS)


class SinglePut(ConsentFields):
    """``PUT /tracking-consent/{recipient}``: the address is the one in the path."""


class SearchQuery(Query):
    """Current states, ordered by address."""

    consent: ConsentValue | None = Field(default=None, description="Only addresses whose current consent is this")
    source: Text(MAX_SOURCE_CHARS) | None = Field(default=None, description="Only this source (exact)")
    cursor: Text(MAX_CURSOR_CHARS) | None = Field(
        default=None, description="The cursor a `next` link carries (the last address of the previous page)"
    )
    per_page: int | None = Field(default=None, ge=1, le=MAX_PER_PAGE, description="Records per page (default 1000)")


# --- answers ----------------------------------------------------------------------------


class Record(BaseModel):
    recipient: str = Field(description="canonical: lower-cased, NFC, the domain as its IDNA A-label")
    consent: ConsentValue
    source: str
    evidence: str
    recorded_at: str = Field(description="ISO 8601, UTC")


class Current(Record):
    """The current state and every change, newest first (the first is the current one)."""

    history: list[Record]


class RetrieveAnswer(BaseModel):
    results: Current


class Link(BaseModel):
    href: str = Field(description="A path under /api/v1/tracking-consent; prefix the host")
    rel: Literal["next"]


class SearchAnswer(BaseModel):
    """``total_count`` counts every match; ``links`` holds ``next`` while there are more."""

    results: list[Record]
    links: list[Link]
    total_count: int


class PutResult(BaseModel):
    message: str
    count: int = Field(description="records written")


class PutAnswer(BaseModel):
    results: PutResult
