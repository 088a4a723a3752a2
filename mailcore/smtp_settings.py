"""What applies to an SMTP-injected message: the one precedence rule of SMTP injection (PURE:
no Django, no I/O).

Three levels, highest first (SPEC A.4, B §9.2; Momentum's smtpapi, modules.smtpapi §71.67.3;
SMTP-INJECTION.md §1.10, §5.7):

1. the injection policy (``ENGAGE_SMTP_POLICY``, :mod:`mailcore.smtp_policy`), and within it
   a per-recipient setting over the per-message one (:func:`smtp_settings_overlay`);
2. the ``X-MSYS-API`` header (:class:`HeaderSettings`, made by
   :meth:`HeaderSettings.from_msys_api`);
3. the listener's settings (``ENGAGE_SMTP_OPEN_TRACKING``, ``ENGAGE_SMTP_CLICK_TRACKING``,
   the tracking domain and link expiry of the deployment).

Field by field, ``None`` means "not given" and the next level decides; a given value is
taken whole (``metadata`` is not merged with a lower level's, ``tags`` are not appended:
Momentum's context variables replace, and that is the conservative reading, §5.7).

``tracking_domain``, ``link_expiry`` and ``initial_open`` can be set only by the policy and
the listener: the header has no such fields (Momentum: "The header cannot set ...
tracking_domain or tracking_link_expiry", B §9.2; ``initial_open`` is the listener's and the
policy's by Engage's decision, SMTP-INJECTION.md "Decisions already taken").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from mailcore.msys_api import MsysApi

__all__ = [
    "HEADER_FIELDS",
    "POLICY_ONLY_FIELDS",
    "HeaderSettings",
    "ResolvedSmtpSettings",
    "SmtpSettings",
    "smtp_settings_overlay",
    "smtp_settings_resolve",
]

T = TypeVar("T")

#: The fields every level may set.
HEADER_FIELDS = ("campaign_id", "metadata", "tags", "open_tracking", "click_tracking", "transactional")
#: The fields only the policy and the listener may set.
POLICY_ONLY_FIELDS = ("tracking_domain", "link_expiry", "initial_open")


@dataclass(frozen=True, slots=True)
class HeaderSettings:
    """What the ``X-MSYS-API`` level may set (B §9.1). Every field None = "not given".

    - ``campaign_id``: str, at most 64 UTF-8 bytes.
    - ``metadata``: a JSON object.
    - ``tags``: at most 10 strings; ``()`` is given (no tags), None is not.
    - ``open_tracking``, ``click_tracking``, ``transactional``: bool.
    """

    campaign_id: str | None = None
    metadata: Mapping[str, object] | None = None
    tags: tuple[str, ...] | None = None
    open_tracking: bool | None = None
    click_tracking: bool | None = None
    transactional: bool | None = None

    @classmethod
    def from_msys_api(cls, api: MsysApi) -> HeaderSettings:
        """The header level of the precedence from a parsed header."""
        return cls(
            campaign_id=api.campaign_id,
            metadata=api.metadata,
            tags=api.tags,
            open_tracking=api.options.open_tracking,
            click_tracking=api.options.click_tracking,
            transactional=api.options.transactional,
        )


@dataclass(frozen=True, slots=True)
class SmtpSettings(HeaderSettings):
    """What the policy and the listener may set: :class:`HeaderSettings`' fields, and

    - ``tracking_domain``: str, ``host[:port]`` or ``http(s)://host[:port]`` as
      :func:`mailcore.domains.tracking_domain_normalize` writes it (``""`` = the configured
      ``ENGAGE_TRACKING_BASE_URL``);
    - ``link_expiry``: int, seconds a tracked link stays valid (Momentum
      ``tracking_link_expiry``; ``ENGAGE_TRACKING_LINK_EXPIRY``);
    - ``initial_open``: bool, the open pixel at the top of the HTML as well as at the bottom.

    Every field None = "not given". A policy's values are checked by
    :func:`mailcore.smtp_policy.policy_decision_check`, the listener's by settings.
    """

    tracking_domain: str | None = None
    link_expiry: int | None = None
    initial_open: bool | None = None


@dataclass(frozen=True, slots=True)
class ResolvedSmtpSettings:
    """The settings one SMTP-injected message (or one recipient's copy) is generated with.

    - ``campaign_id``: str or None (no campaign).
    - ``metadata``: a JSON object, ``{}`` when no level gives one.
    - ``tags``: at most 10 strings, ``()`` when no level gives any.
    - ``open_tracking``, ``click_tracking``: False when no level gives one (SMTP tracking is
      off by default, SPEC A.4, B §9.3).
    - ``transactional``: False when no level gives one (B §9.1).
    - ``initial_open``: False when no level gives one, and always False without open
      tracking (SMTP-INJECTION.md "Decisions already taken"; the REST rule of
      ``mailcore.options``).
    - ``tracking_domain``: str or None (the configured ``ENGAGE_TRACKING_BASE_URL``).
    - ``link_expiry``: seconds, or None (the configured ``ENGAGE_TRACKING_LINK_EXPIRY``).
    """

    campaign_id: str | None
    metadata: Mapping[str, object] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    open_tracking: bool = False
    click_tracking: bool = False
    transactional: bool = False
    initial_open: bool = False
    tracking_domain: str | None = None
    link_expiry: int | None = None


def _first(*values: T | None) -> T | None:
    for value in values:
        if value is not None:
            return value
    return None


def smtp_settings_overlay(top: SmtpSettings, base: SmtpSettings) -> SmtpSettings:
    """``top`` over ``base``, field by field (None in ``top`` = take ``base``'s): how a
    policy's per-recipient settings sit on its per-message ones, before
    :func:`smtp_settings_resolve` (SMTP-INJECTION.md §5.7, §5.8)."""
    return SmtpSettings(
        campaign_id=_first(top.campaign_id, base.campaign_id),
        metadata=_first(top.metadata, base.metadata),
        tags=_first(top.tags, base.tags),
        open_tracking=_first(top.open_tracking, base.open_tracking),
        click_tracking=_first(top.click_tracking, base.click_tracking),
        transactional=_first(top.transactional, base.transactional),
        tracking_domain=_first(top.tracking_domain, base.tracking_domain),
        link_expiry=_first(top.link_expiry, base.link_expiry),
        initial_open=_first(top.initial_open, base.initial_open),
    )


def smtp_settings_resolve(policy: SmtpSettings, header: HeaderSettings, listener: SmtpSettings) -> ResolvedSmtpSettings:
    """The settings of one message, or of one recipient's copy when ``policy`` is that
    recipient's (``PolicyAccept.settings_for``).

    Order, highest first, for every field: ``policy`` > ``header`` > ``listener`` (module
    docstring; SPEC A.4, B §9.2). ``tracking_domain``, ``link_expiry`` and ``initial_open``
    are read from ``policy`` and ``listener`` only: ``header`` is a :class:`HeaderSettings`,
    and when an :class:`SmtpSettings` is passed there, its policy-only fields are ignored.
    Defaults when no level gives a value: see :class:`ResolvedSmtpSettings`.
    """
    open_tracking = bool(_first(policy.open_tracking, header.open_tracking, listener.open_tracking))
    return ResolvedSmtpSettings(
        campaign_id=_first(policy.campaign_id, header.campaign_id, listener.campaign_id),
        metadata=_first(policy.metadata, header.metadata, listener.metadata) or {},
        tags=_first(policy.tags, header.tags, listener.tags) or (),
        open_tracking=open_tracking,
        click_tracking=bool(_first(policy.click_tracking, header.click_tracking, listener.click_tracking)),
        transactional=bool(_first(policy.transactional, header.transactional, listener.transactional)),
        initial_open=open_tracking and bool(_first(policy.initial_open, listener.initial_open)),
        tracking_domain=_first(policy.tracking_domain, listener.tracking_domain),
        link_expiry=_first(policy.link_expiry, listener.link_expiry),
    )
