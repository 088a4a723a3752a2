"""What ``/api/v1/transmissions`` requests may hold and what they answer (SPEC B §1), declared
once for the check at the edge and the OpenAPI document (``engage/api/schema.py``).

These check shape and bounds before any service runs. The rules beyond shape stay where they
were: byte limits, metadata and substitution-data sizes, ``start_time`` against the clock,
base64, template/rfc822 compilation in ``transmissions/payload.py``; each recipient in
``recipient_lists/recipients.py``, so that a bad recipient lands in ``rcpt_to_errors`` and the
good ones are accepted (SPEC B §1.5) rather than refusing the whole request here.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, TypeAdapter, ValidationError, WrapValidator

from engage.api.schema import Body, DateTimeText, ErrorDetail, JsonObject, Query, Text
from mailcore.addresses import MAX_EMAIL_LENGTH
from mailcore.domains import TRACKING_DOMAIN_FORMS, tracking_domain_normalize
from mailcore.ids import MAX_ID_BYTES
from mailcore.mime import CONTENT_ID_PATTERN, content_id_problem
from recipient_lists.schemas import MAX_INT32, RecipientArray
from templates_app.schemas import MAX_PART_CHARS, Content
from transmissions.models import Transmission, TransmissionState
from transmissions.payload import (
    MAX_ATTACHMENT_NAME_BYTES,
    MAX_CAMPAIGN_ID_BYTES,
    MAX_DESCRIPTION_BYTES,
    MAX_TEMPLATE_ID_BYTES,
    MEDIA_TYPE_PATTERN,
)

#: ``type/subtype`` names are at most 127 characters each (RFC 6838 §4.2).
MAX_MEDIA_TYPE_CHARS = 255
#: Base64 of the largest part: four characters per three bytes.
MAX_FILE_DATA_CHARS = MAX_PART_CHARS * 4 // 3 + 4
MAX_IP_POOL_CHARS = 64
MAX_TRACKING_DOMAIN_CHARS = Transmission._meta.get_field("tracking_domain").max_length


class TransmissionFile(Body):
    """An attachment or inline image (SPEC B §1.3): ``data`` is base64 without line breaks;
    an inline image's ``name`` is its Content-ID and unique in its array."""

    type: Text(
        MAX_MEDIA_TYPE_CHARS,
        min_length=1,
        pattern=MEDIA_TYPE_PATTERN,
        description="the media type, type/subtype without parameters (RFC 6838 §4.2), e.g. application/pdf",
    )
    name: Text(MAX_ATTACHMENT_NAME_BYTES, min_length=1, description="at most 255 bytes")
    data: Text(MAX_FILE_DATA_CHARS, min_length=1, description="base64")


def _check_content_id(value: str) -> str:
    if (problem := content_id_problem(value)) is not None:
        raise ValueError(problem)
    return value


class InlineImage(TransmissionFile):
    """An inline image (SPEC B §1.3): its ``name`` is its Content-ID (``<img src="cid:name">``),
    so it is dot-atom-text with an optional ``@`` (RFC 2392, RFC 5322 §3.6.4)."""

    name: Annotated[
        str,
        Field(
            max_length=MAX_ATTACHMENT_NAME_BYTES,
            min_length=1,
            description="the Content-ID, e.g. logo.png: letters, digits, dots and !#$%&'*+/=?^_`{|}~- with an "
            "optional @; at most 255 bytes",
            json_schema_extra={"pattern": CONTENT_ID_PATTERN},
        ),
        AfterValidator(_check_content_id),
    ]


class TransmissionContent(Content):
    """Inline content, a stored template (``template_id``, ``use_draft_template``), or a
    whole ``email_rfc822`` message (SPEC B §1.3); one kind per transmission."""

    attachments: list[TransmissionFile] | None = None
    inline_images: list[InlineImage] | None = None
    template_id: Text(MAX_TEMPLATE_ID_BYTES, min_length=1) | None = None
    use_draft_template: bool | None = None


_DATETIME = TypeAdapter(DateTimeText)


def _check_start_time(value: str) -> str:
    if value.strip().lower() == "now":
        return value
    try:
        _DATETIME.validate_python(value)
    except ValidationError as exc:
        raise ValueError(exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")) from None
    return value


#: ``"now"`` or a date-time with an offset; how far ahead it may be is the service's rule.
StartTime = Annotated[
    str,
    Field(max_length=64, description='"now" or YYYY-MM-DDTHH:MM:SS+HH:MM'),
    AfterValidator(_check_start_time),
]


class TransmissionOptions(Body):
    """SPEC B §1.2; ``open_tracking``/``click_tracking``/``transactional`` left out fall back to
    the template, then to the configuration. The booleans are ``payload.BOOL_OPTIONS``."""

    open_tracking: bool | None = None
    click_tracking: bool | None = None
    initial_open: bool | None = None
    transactional: bool | None = None
    inline_css: bool | None = None
    sandbox: bool | None = None
    skip_suppression: bool | None = None
    perform_substitutions: bool | None = None
    ip_pool: Text(MAX_IP_POOL_CHARS) | None = None
    start_time: StartTime | None = None


class StoredRecipients(Body):
    """Recipients from a stored list."""

    list_id: Text(MAX_ID_BYTES, min_length=1)


def _recipients(value: Any, handler: Any) -> Any:
    if isinstance(value, list):
        return value  # each recipient is judged on its own (rcpt_to_errors)
    if not isinstance(value, dict):
        raise ValueError("must be an array of recipients, or an object with list_id")
    return handler(value)


#: An array of :class:`Recipient` (documented; judged per recipient later) or ``{"list_id"}``.
Recipients = Annotated[
    StoredRecipients, WrapValidator(_recipients, json_schema_input_type=RecipientArray | StoredRecipients)
]


_EXAMPLE: dict[str, Any] = {
    "campaign_id": "spring",
    "options": {"open_tracking": True, "click_tracking": True},
    "metadata": {"source": "docs"},
    "substitution_data": {"offer": "SPRING"},
    "content": {
        "from": "Team <team@example.com>",
        "subject": "Hi {{name}}",
        "text": "Hello {{name}}: https://example.com/?o={{offer}}",
    },
    "recipients": [
        {"address": {"email": "ada@example.com", "name": "Ada"}, "substitution_data": {"name": "Ada"}},
        {"address": "Bob <bob@example.com>", "tags": ["docs"]},
    ],
}


def _check_tracking_domain(value: str) -> str:
    tracking_domain_normalize(value.strip())  # raises ValueError saying why
    return value


#: ``host[:port]`` or ``http(s)://host[:port]``; the rule is ``mailcore.domains``.
TrackingDomain = Annotated[
    str,
    Field(max_length=MAX_TRACKING_DOMAIN_CHARS, description=TRACKING_DOMAIN_FORMS),
    AfterValidator(_check_tracking_domain),
]


class TransmissionCreate(Body):
    """A transmission (SPEC B §1.1): ``content`` and ``recipients`` are required."""

    model_config = {"json_schema_extra": {"required": ["content", "recipients"], "examples": [_EXAMPLE]}}

    options: TransmissionOptions | None = None
    recipients: Recipients | None = None
    content: TransmissionContent | None = None
    campaign_id: Text(MAX_CAMPAIGN_ID_BYTES) | None = Field(default=None, description="at most 64 bytes")
    description: Text(MAX_DESCRIPTION_BYTES) | None = Field(default=None, description="at most 1024 bytes")
    metadata: JsonObject | None = None
    substitution_data: JsonObject | None = None
    return_path: Text(MAX_EMAIL_LENGTH) | None = None
    tracking_domain: TrackingDomain | None = None


class TransmissionCreateQuery(Query):
    num_rcpt_errors: int | None = Field(
        default=None, ge=0, le=MAX_INT32, description="at most this many rcpt_to_errors are returned"
    )


class TransmissionListQuery(Query):
    campaign_id: Text(MAX_CAMPAIGN_ID_BYTES) | None = Field(default=None, description="only this campaign")
    template_id: Text(MAX_TEMPLATE_ID_BYTES) | None = Field(
        default=None,
        description='only this stored template; "inline" for inline content, "smtp_<id>" for an SMTP injection',
    )


# --- answers ----------------------------------------------------------------------------


class TransmissionAccepted(BaseModel):
    id: str = Field(description="numeric string")
    total_accepted_recipients: int
    total_rejected_recipients: int
    rcpt_to_errors: list[ErrorDetail] | None = Field(default=None, description="when some were rejected")


class TransmissionCreateResponse(BaseModel):
    """200 also when some recipients were rejected: then ``errors`` holds one 2000."""

    results: TransmissionAccepted
    errors: list[ErrorDetail] | None = None


class TransmissionContentSummary(BaseModel):
    template_id: str = Field(
        description='the stored template; "inline" for inline content, "smtp_<id>" for an SMTP injection'
    )
    use_draft_template: bool | None = None


class TransmissionSummary(BaseModel):
    id: str
    campaign_id: str
    description: str
    state: TransmissionState
    content: TransmissionContentSummary


class TransmissionListResponse(BaseModel):
    results: list[TransmissionSummary]


class TransmissionDetail(BaseModel):
    """SPEC B §1.7: unset values are ``""``."""

    id: str
    description: str
    state: TransmissionState
    campaign_id: str
    content: dict[str, Any]
    return_path: str
    recipients: StoredRecipients | str
    num_rcpts: int
    num_generated: int
    num_failed_gen: int
    generation_start_time: str
    generation_end_time: str
    rcpt_list_chunk_size: int
    rcpt_list_total_chunks: int
    substitution_data: dict[str, Any] | str
    metadata: dict[str, Any] | str
    options: dict[str, Any]
    start_time: str


class TransmissionDetailResults(BaseModel):
    transmission: TransmissionDetail


class TransmissionDetailResponse(BaseModel):
    results: TransmissionDetailResults
