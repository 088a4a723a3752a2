"""What ``/api/v1/templates`` requests may hold (SPEC B §2), declared once for the check at the
edge and the OpenAPI document (``engage/api/schema.py``). The rules beyond shape (``from``
required, ``html`` or ``text``, the content byte limit, the substitution syntax) stay in
``templates_app/content.py``, which runs after these.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from engage.api.schema import Body, JsonObject, Query, Text
from mailcore.ids import MAX_ID_BYTES
from mailcore.link_check import MAX_LINKS_LISTED, REASONS

#: Bodies up to the largest content a transmission may carry (settings enforce the real limit).
MAX_PART_CHARS = 20 * 1024 * 1024
MAX_NAME_CHARS = 1024
MAX_HEADER_NAME_CHARS = 998
MAX_ADDRESS_CHARS = 1024


class Address(Body):
    """``{"email", "name"}``: the object form of ``from`` (SPEC B §1.3)."""

    email: Text(MAX_ADDRESS_CHARS) | None = None
    name: Text(MAX_NAME_CHARS) | None = None


class Content(Body):
    """Inline content (SPEC B §1.3, §2.1): ``from`` as ``"Name <addr>"`` or an object; the
    bodies; ``headers`` as names to values; or a whole ``email_rfc822`` message."""

    from_: Text(MAX_ADDRESS_CHARS) | Address | None = Field(default=None, alias="from")
    subject: Text(MAX_PART_CHARS) | None = None
    text: Text(MAX_PART_CHARS) | None = None
    html: Text(MAX_PART_CHARS) | None = None
    amp_html: Text(MAX_PART_CHARS) | None = None
    reply_to: Text(MAX_ADDRESS_CHARS) | None = None
    headers: dict[Text(MAX_HEADER_NAME_CHARS), Text(MAX_PART_CHARS)] | None = None
    email_rfc822: Text(MAX_PART_CHARS) | None = None


class TemplateOptions(Body):
    open_tracking: bool | None = None
    click_tracking: bool | None = None
    transactional: bool | None = None


class TemplateCreate(Body):
    id: Text(MAX_ID_BYTES) | None = None
    name: Text(MAX_NAME_CHARS) | None = None
    description: Text(MAX_NAME_CHARS) | None = None
    published: bool | None = None
    content: Content | None = None
    options: TemplateOptions | None = None


class TemplateUpdate(TemplateCreate):
    """The fields to change; ``published: true`` publishes the draft (SPEC B §2.2)."""


class TemplatePreview(Body):
    substitution_data: JsonObject | None = None


class DraftQuery(Query):
    draft: bool | None = Field(default=None, description="true: the draft; false: the published version")


class UpdateQuery(Query):
    update_published: bool | None = Field(default=None, description="true: change the published version in place")


class PreviewQuery(DraftQuery):
    pass


class LinkCheckOptions(Body):
    click_tracking: bool | None = None


class LinkCheckContent(Body):
    """The parts whose links are checked; other content fields are ignored."""

    html: Text(MAX_PART_CHARS) | None = None
    text: Text(MAX_PART_CHARS) | None = None
    amp_html: Text(MAX_PART_CHARS) | None = None
    email_rfc822: Text(MAX_PART_CHARS) | None = None


class LinkCheck(Body):
    """``POST /api/v1/link-check`` (Engage's own): ``content`` or a stored template's
    ``template_id`` (``draft``: true its draft, false its published version, absent the
    version updated last), the sample ``substitution_data``, and ``options.click_tracking`` over the
    template's and the server's."""

    content: LinkCheckContent | None = None
    template_id: Text(MAX_ID_BYTES) | None = None
    draft: bool | None = None
    substitution_data: JsonObject | None = None
    options: LinkCheckOptions | None = None


class LinkCheckLink(Body):
    """One link of the checked message (``mailcore.link_check.LinkCheck``)."""

    part: Literal["html", "text", "amp_html"]
    position: int | None = Field(description="0-based index among the links written in the part's template")
    line: int | None = Field(description="1-based line of the link in the part's template")
    link_position: int | None = Field(
        description=(
            "the engage_link_position a click on it reports and the report's Position: 1-based among "
            "the tracked links of its part (or dynamic chunk); null when not tracked"
        )
    )
    url: str = Field(description="the target after substitution (as written when not rendered)")
    tracked: bool
    reason: Literal[tuple(REASONS)] | None = Field(description="why the link is not tracked; null when tracked")
    reason_text: str | None
    link_name: str | None
    origin: Literal["template", "dynamic_content", "substitution_value"]


class LinkCheckResult(Body):
    click_tracking: bool = Field(description="the effective click_tracking option")
    links: list[LinkCheckLink] = Field(description=f"the first {MAX_LINKS_LISTED} links, in order")
    total_links: int = Field(description="how many links the check found")
    truncated: bool = Field(description="true when links lists only the first of total_links")


class LinkCheckAnswer(Body):
    results: LinkCheckResult
