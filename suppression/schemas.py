"""What ``/api/v1/suppression-list`` requests may hold and what they answer (SPEC A.5, B §11),
declared once for the check at the edge and the OpenAPI document (``engage/api/schema.py``).

These check shape (types, enums, lengths, at most 10,000 entries); what needs the whole entry
(an address that is valid, ``type`` against the booleans, ``description`` in bytes) is
``suppression.entries``. Bad bodies answer 400 / 1300, as SparkPost's did, not the 422 of
other resources.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from engage.api.schema import Body, Query, Text
from mailcore.addresses import MAX_EMAIL_LENGTH
from suppression.models import MAX_DESCRIPTION_BYTES
from suppression.search import MAX_PER_PAGE, SOURCES, TYPES

#: Entries in one bulk PUT (SPEC A.5).
MAX_BULK_ENTRIES = 10_000
MAX_CURSOR_CHARS = 256
MAX_LIST_CHARS = 4096

TypeName = Literal["transactional", "non_transactional"]
_Address = Text(MAX_EMAIL_LENGTH, min_length=1)
_Description = Text(MAX_DESCRIPTION_BYTES, description=f"at most {MAX_DESCRIPTION_BYTES} bytes of UTF-8")


class EntryFields(Body):
    """What to suppress: ``type``, or the legacy booleans (``true`` adds that type, ``false``
    changes nothing); where they disagree ``type`` wins. ``description`` replaces the stored
    one when given."""

    type: TypeName | None = None
    transactional: bool | None = None
    non_transactional: bool | None = None
    description: _Description | None = None


class EntryIn(EntryFields):
    """One entry of a bulk PUT: the address as ``recipient`` (or the legacy ``email``)."""

    recipient: _Address | None = None
    email: _Address | None = None


class BulkPut(Body):
    """``{"recipients": [entry, ...]}``: at most 10,000 entries, written all or nothing; when
    an address and type appear twice, the last wins."""

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "recipients": [
                        {"recipient": "ada@example.com", "type": "non_transactional", "description": "asked by phone"},
                        {"email": "bob@example.com", "transactional": True, "non_transactional": True},
                    ]
                }
            ]
        }
    }

    recipients: list[EntryIn] = Field(max_length=MAX_BULK_ENTRIES)


class SinglePut(EntryFields):
    """``PUT /suppression-list/{recipient}``: the address is the one in the path."""


class DeleteBody(Body):
    """Optional: ``type`` removes that type's entry only; without it both go."""

    type: TypeName | None = None


def _list_doc(names: tuple[str, ...]) -> str:
    return ", ".join(names)


class SearchQuery(Query):
    """Entries newest first (``sort=asc``: oldest first) by ``updated``. List parameters may
    be comma lists, repeated keys or ``types[0]=``."""

    from_: Text(64) | None = Field(
        default=None, alias="from", description="Updated at or after, YYYY-MM-DDTHH:MM[:SS][+HH:MM] (UTC by default)"
    )
    to: Text(64) | None = Field(default=None, description="Updated at or before (inclusive), same form as from")
    types: Text(MAX_LIST_CHARS) | None = Field(default=None, description=f"Types, comma-separated: {_list_doc(TYPES)}")
    sources: Text(MAX_LIST_CHARS) | None = Field(
        default=None, description=f"Sources, comma-separated: {_list_doc(SOURCES)}"
    )
    description: Text(MAX_DESCRIPTION_BYTES) | None = Field(
        default=None, description="Substring of the description (case-insensitive)"
    )
    cursor: Text(MAX_CURSOR_CHARS) | None = Field(
        default=None, description="`initial` (default) or the cursor a `links` entry carries"
    )
    per_page: int | None = Field(default=None, ge=1, le=MAX_PER_PAGE, description="Entries per page (default 1000)")
    limit: int | None = Field(default=None, ge=1, le=MAX_PER_PAGE, description="Legacy name of per_page")
    sort: Literal["asc", "desc"] | None = Field(default=None, description="Order by updated (default desc)")


class RetrieveQuery(Query):
    types: Text(MAX_LIST_CHARS) | None = Field(
        default=None, description=f"Only these types, comma-separated: {_list_doc(TYPES)}"
    )


# --- answers ----------------------------------------------------------------------------


class Entry(BaseModel):
    """One entry per (recipient, type); the boolean that matches ``type`` is ``true`` (for
    clients that read the legacy shape)."""

    recipient: str
    type: TypeName
    source: Literal[SOURCES]
    description: str
    created: str
    updated: str
    transactional: bool | None = None
    non_transactional: bool | None = None


class Link(BaseModel):
    href: str = Field(description="A path under /api/v1/suppression-list; prefix the host")
    rel: Literal["first", "next"]


class SearchAnswer(BaseModel):
    """``links`` is ``[]`` when everything fits on the first page; ``total_count`` counts every match."""

    results: list[Entry]
    links: list[Link]
    total_count: int


class Message(BaseModel):
    message: str


class PutAnswer(BaseModel):
    results: Message


class Summary(BaseModel):
    """Entries by source (``manually_added``, ``bounce_rule``, ...) and by type; ``total`` counts every entry."""

    manually_added: int
    bounce_rule: int
    spam_complaint: int
    list_unsubscribe: int
    unsubscribe_link: int
    compliance: int
    transactional: int
    non_transactional: int
    total: int


class SummaryAnswer(BaseModel):
    results: Summary
