"""What ``/api/v1/webhooks`` requests may hold and what they answer (SPEC B §8), declared once
for the check at the edge and the OpenAPI document (``engage/api/schema.py``).

The rules beyond shape stay with ``analytics.webhooks``: the target's address policy
(``analytics.targets``: no internal hosts), the test POST, the auth combinations.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from analytics.webhooks import RESERVED_HEADERS
from engage.api.schema import Body, DateTimeText, JsonObject, Query, Text, TimeZone
from mailcore.events import NAMES

MAX_NAME_CHARS = 1024
MAX_TARGET_CHARS = 2048
MAX_TOKEN_CHARS = 1024
MAX_HEADERS = 50

EventType = Literal[NAMES]
AuthType = Literal["none", "basic", "oauth2"]
#: An HTTP field name (RFC 9110 §5.1: a token) and a value with no control characters
#: (RFC 9110 §5.5), so a custom header can never split the request it is sent with.
HeaderName = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")]
HeaderValue = Annotated[str, Field(max_length=4096, pattern=r"^[^\x00-\x08\x0a-\x1f\x7f]*$")]


def _check_custom_headers(headers: dict[str, str]) -> dict[str, str]:
    seen: set[str] = set()
    for name in headers:
        key = name.lower()
        if key in RESERVED_HEADERS:
            raise ValueError(f"'{name}' cannot be set: Engage writes the request's framing, Host and its own headers")
        if key in seen:
            raise ValueError(f"'{name}' is given twice (header names are compared without case)")
        seen.add(key)
    return headers


#: At most MAX_HEADERS custom headers, one per name, none that frames or routes the request.
CustomHeaders = Annotated[
    dict[HeaderName, HeaderValue], Field(max_length=MAX_HEADERS), AfterValidator(_check_custom_headers)
]


class AuthRequestDetails(Body):
    """Where OAuth 2.0 client credentials are exchanged for a token (SPEC B §8.1)."""

    url: Text(MAX_TARGET_CHARS)
    body: JsonObject | None = None


class WebhookFields(Body):
    name: Text(MAX_NAME_CHARS, min_length=1) | None = None
    target: Text(MAX_TARGET_CHARS, min_length=1, description="http:// or https:// URL of a public host") | None = None
    events: Annotated[list[EventType], Field(min_length=1, max_length=len(NAMES))] | None = None
    auth_type: AuthType | None = None
    auth_token: Text(MAX_TOKEN_CHARS) | None = None
    auth_request_details: AuthRequestDetails | None = None
    auth_credentials: JsonObject | None = None
    custom_headers: CustomHeaders | None = None
    active: bool | None = None


class WebhookCreate(WebhookFields):
    """A new webhook: ``name``, ``target`` and ``events`` required; a test POST must get 200."""

    name: Text(MAX_NAME_CHARS, min_length=1)
    target: Text(MAX_TARGET_CHARS, min_length=1, description="http:// or https:// URL of a public host")
    events: Annotated[list[EventType], Field(min_length=1, max_length=len(NAMES))]


class WebhookUpdate(WebhookFields):
    """The fields to change."""


class WebhookValidate(Body):
    message: JsonObject | None = None


class WebhookReplay(Body):
    """Re-deliver stored events: a window (``from``, optional ``to``, in ``timezone``), or
    everything after one event (``since_event_id``)."""

    from_: DateTimeText | None = Field(default=None, alias="from")
    to: DateTimeText | None = None
    timezone: TimeZone | None = None
    since_event_id: Text(64) | Annotated[int, Field(ge=0, lt=2**63)] | None = None


class TimeZoneQuery(Query):
    timezone: TimeZone | None = Field(default=None, description="Time zone of the times in the answer")


class BatchStatusQuery(TimeZoneQuery):
    limit: Annotated[int, Field(ge=1, le=10_000)] | None = Field(default=None, description="At most this many batches")


# --- answers ------------------------------------------------------------------------------


class Link(BaseModel):
    href: str
    rel: str
    method: list[str]


class Webhook(BaseModel):
    id: str
    name: str
    target: str
    events: list[str]
    auth_type: str
    auth_token: str
    auth_request_details: dict[str, Any]
    auth_credentials: dict[str, Any]
    custom_headers: dict[str, Any]
    active: bool
    last_successful: str | None
    last_failure: str | None
    links: list[Link]


class WebhookList(BaseModel):
    results: list[Webhook]


class WebhookDetail(BaseModel):
    results: Webhook


class WebhookSaved(BaseModel):
    class Saved(BaseModel):
        id: str
        links: list[Link]

    results: Saved


class WebhookValidated(BaseModel):
    class Outcome(BaseModel):
        class Answer(BaseModel):
            status: int | None
            reason: str

        msg: str
        response: Answer

    results: Outcome


class BatchStatus(BaseModel):
    class Batch(BaseModel):
        batch_id: str
        ts: str | None
        attempts: int
        response_code: str | int | None
        failure_code: str | None
        latency: int | None
        batch_size: int
        state: str
        next_attempt: str | None

    results: list[Batch]


class Replayed(BaseModel):
    class Count(BaseModel):
        events: int

    results: Count
