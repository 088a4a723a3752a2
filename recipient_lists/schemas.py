"""What ``/api/v1/recipient-lists`` requests may hold and what they answer (SPEC B §3), declared
once for the check at the edge and the OpenAPI document (``engage/api/schema.py``).

The recipient object (SPEC B §3.2) is declared in full for the document and shared with inline
transmission recipients, but a ``recipients`` array is *not* checked element by element here:
one bad recipient is reported in ``rcpt_to_errors`` while the good ones are accepted (SPEC B
§1.5, §3.3), which ``recipient_lists/recipients.py`` does per recipient after these checks.
The byte limits (name 64, description 1024, id 64) stay with the view, which counts bytes;
these count characters, so they never refuse what the byte checks would accept.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, WrapValidator

from engage.api.schema import Body, ErrorDetail, JsonObject, Query, Text
from mailcore.addresses import MAX_EMAIL_LENGTH
from mailcore.consent import VALUES as CONSENT_VALUES
from mailcore.ids import MAX_ID_BYTES
from recipient_lists.recipients import MAX_ADDRESS_CHARS, MAX_NAME_CHARS, MAX_TAG_CHARS, MAX_TAGS

MAX_LIST_NAME_BYTES = 64
MAX_LIST_DESCRIPTION_BYTES = 1024
#: ``num_rcpt_errors`` is a JSON-era 32-bit number (SPEC B §0.1).
MAX_INT32 = 2**31 - 1


class RecipientAddress(Body):
    """``{"email", "name", "header_to"}``: ``header_to`` replaces the address shown in ``To``
    (SPEC B §1.4)."""

    email: Annotated[str, Field(min_length=1, max_length=MAX_EMAIL_LENGTH, json_schema_extra={"format": "email"})]
    name: Text(MAX_NAME_CHARS) | None = None
    header_to: Text(MAX_ADDRESS_CHARS) | None = None


class Recipient(Body):
    """One recipient (SPEC B §3.2): ``address`` as ``"addr"``, ``"Name <addr>"`` or an object.
    At most 10 tags are kept; extra tags are ignored."""

    address: Text(MAX_ADDRESS_CHARS, min_length=1) | RecipientAddress
    return_path: Text(MAX_EMAIL_LENGTH) | None = None
    tags: list[Text(MAX_TAG_CHARS)] | None = Field(default=None, description=f"at most {MAX_TAGS} are kept")
    metadata: JsonObject | None = None
    substitution_data: JsonObject | None = None
    tracking_consent: Literal[CONSENT_VALUES] | None = Field(
        default=None,
        description="granted or denied: this recipient's tracking consent for the transmission; it wins over "
        "the tracking consent register and ENGAGE_TRACKING_CONSENT_DEFAULT (SPEC A.5)",
    )


def _each_recipient_judged_later(value: Any, handler: Any) -> Any:
    return handler(value)


#: An array of recipients: documented as :class:`Recipient` items, checked here only for being
#: an array; each element is judged on its own by ``normalize_recipient`` (``rcpt_to_errors``).
RecipientArray = Annotated[
    list[Any], WrapValidator(_each_recipient_judged_later, json_schema_input_type=list[Recipient])
]


class RecipientListCreate(Body):
    """A new list (SPEC B §3.1): ``recipients`` is required; ``id`` is made from ``name``
    when absent and never starts with ``rcptlist_``."""

    model_config = {
        "json_schema_extra": {
            "required": ["recipients"],
            "examples": [
                {
                    "id": "friends",
                    "name": "Friends",
                    "attributes": {"owner": "docs"},
                    "recipients": [
                        {"address": {"email": "ada@example.com", "name": "Ada"}, "metadata": {"age": 36}},
                        {"address": "bob@example.com", "return_path": "bounces@example.com"},
                    ],
                }
            ],
        }
    }

    id: Text(MAX_ID_BYTES, min_length=1) | None = None
    name: Text(MAX_LIST_NAME_BYTES) | None = None
    description: Text(MAX_LIST_DESCRIPTION_BYTES) | None = None
    attributes: JsonObject | None = None
    recipients: RecipientArray | None = None


class RecipientListUpdate(Body):
    """The fields to change; ``attributes`` and ``recipients`` replace the stored values
    (SPEC B §3.3). ``id``, when given, must be the id in the URI."""

    id: Text(MAX_ID_BYTES) | None = None
    name: Text(MAX_LIST_NAME_BYTES) | None = None
    description: Text(MAX_LIST_DESCRIPTION_BYTES) | None = None
    attributes: JsonObject | None = None
    recipients: RecipientArray | None = None


class RcptErrorsQuery(Query):
    num_rcpt_errors: int | None = Field(
        default=None, ge=0, le=MAX_INT32, description="at most this many rcpt_to_errors are returned"
    )


class RetrieveQuery(Query):
    show_recipients: bool | None = Field(default=None, description="true: include the recipients")


# --- answers ----------------------------------------------------------------------------


class StoredRecipientAddress(BaseModel):
    email: str
    name: str | None = None
    header_to: str | None = None


class StoredRecipient(BaseModel):
    address: StoredRecipientAddress
    return_path: str
    tags: list[str]
    metadata: dict[str, Any]
    substitution_data: dict[str, Any]
    tracking_consent: Literal[CONSENT_VALUES] | None = None


class RecipientListSummary(BaseModel):
    id: str
    name: str
    description: str
    attributes: dict[str, Any] | None
    total_accepted_recipients: int


class RecipientListDetail(RecipientListSummary):
    recipients: list[StoredRecipient] | None = Field(default=None, description="with show_recipients=true")


class RecipientListCounts(BaseModel):
    """``id`` and ``name``; the counts (and ``rcpt_to_errors`` when some were rejected) when
    recipients were sent."""

    id: str
    name: str
    total_accepted_recipients: int | None = None
    total_rejected_recipients: int | None = None
    rcpt_to_errors: list[ErrorDetail] | None = None


class RecipientListListResponse(BaseModel):
    results: list[RecipientListSummary]


class RecipientListResponse(BaseModel):
    results: RecipientListDetail


class RecipientListWriteResponse(BaseModel):
    """200 also when some recipients were rejected: then ``errors`` holds one 5000."""

    results: RecipientListCounts
    errors: list[ErrorDetail] | None = None
