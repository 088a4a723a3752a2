"""PURE: the one table of event types (SPEC A.3, B §6, B §7.3). Every other list of event
types is read from here (STYLE rule 12): the ``tracking_event.type`` choices, the webhooks
API's ``events``, the events search's ``events`` filter and its answer's ``type``, the
webhook record's category, the fields each type always shows, and the rollup counters each
type adds to (which ``analytics.metrics.METRICS`` turns into SparkPost's metric names).

Two kinds of type:

- **recorded** (SPEC A.3): Engage stores them in ``tracking_event`` and counts them.
  ``policy_rejection`` and ``generation_rejection`` are recorded types that Engage never
  writes today (no suppression, no policy), so filters and metrics name them already.
- **known only**: SparkPost types Engage never writes or counts (``spam_complaint``,
  ``out_of_band``). Webhooks may subscribe to them and the events search accepts them (it
  finds none), as SparkPost does; their metrics (``count_spam_complaint``,
  ``count_outofband_bounce``) are always 0.

Who reads this table, and what notices a change:

- ``analytics.serialize`` shows each type's ``fields`` from here (``OPTIONAL_FIELDS``);
  ``tests/analytics/test_serialize.py`` checks that each type shows them.
- ``tracking.services`` records the types of ``HIT_TYPES`` for each tracking-token kind.
- A ``counter`` that is not a column of the rollups stops ``analytics.rollups`` from
  importing, with a message naming what to add (the column in ``analytics.models`` and a
  migration).
- ``tracking_event.type`` is ``varchar(32)``: the database enforces no list of types (no
  CHECK, no enum). ``tracking.models.Event`` reads its choices from ``RECORDED``, but the
  model is unmanaged (``managed = False``), so those choices are Django's only: the copy of
  the list in ``tracking/migrations/0001_event.py`` is history that nothing compares (and
  ``makemigrations --check`` ignores unmanaged models). A new recorded type needs no
  migration of ``tracking_event``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BY_NAME",
    "CATEGORIES",
    "EVENT_TYPES",
    "HIT_TYPES",
    "LINK_POSITION",
    "LINK_TEMPLATE_URL",
    "NAMES",
    "OPTIONAL_FIELDS",
    "RECORDED",
    "EventType",
    "hit_types",
    "names_in",
]

_ENGAGEMENT = ("ip_address", "user_agent", "accept_language")
_LINK = ("target_link_name", "target_link_url")
#: Engage's own fields of ``click`` and ``link_unsubscribe`` events, beside SparkPost's
#: ``target_link_name`` / ``target_link_url`` (which keep their meaning): the link's 1-based
#: position among the tracked links of its part (an integer), and its URL as written in the
#: template or SMTP message, before substitution (``https://x/a?id={{id}}``). Carried in the
#: click token (``mailcore.tokens``), stored in ``extra``, absent from events of links sent
#: before they existed. The report groups links by them (``analytics.rollups``).
LINK_POSITION = "engage_link_position"
LINK_TEMPLATE_URL = "engage_link_template_url"
_RELAY_ANSWER = ("ip_address", "bounce_class", "error_code", "reason")


@dataclass(frozen=True, slots=True)
class EventType:
    """One event type.

    - ``name``: the ``type`` string (SPEC B §6.1).
    - ``category``: the key of its webhook record, ``{"msys": {<category>: {...}}}``
      (SPEC B §6.1): ``message_event``, ``track_event``, ``gen_event`` or
      ``unsubscribe_event``.
    - ``recorded``: Engage stores and counts it (SPEC A.3); see the module docstring.
    - ``fields``: optional fields the events APIs show for it even when empty (SPEC B §6.3);
      the others are shown only when set.
    - ``counter``: the rollup counter (a column of ``analytics_rollup_hourly``) that each
      event of this type adds 1 to, "" for none.
    - ``unique_counter``: the rollup counter that counts each message once, at its first
      event of this type ("" for none). Its first-seen time is the column
      ``first_<name>`` of ``analytics_message_engagement``; a message with a first event of
      any such type also counts once in ``unique_confirmed_opened`` (SPEC A.3).
    """

    name: str
    category: str
    recorded: bool
    fields: tuple[str, ...] = ()
    counter: str = ""
    unique_counter: str = ""


#: Every SparkPost event type Engage knows, recorded ones first in the order of the
#: ``tracking_event.type`` choices.
EVENT_TYPES: tuple[EventType, ...] = (
    EventType("injection", "message_event", True, counter="injected"),
    EventType("delivery", "message_event", True, ("ip_address",), counter="delivered"),
    EventType("bounce", "message_event", True, _RELAY_ANSWER, counter="bounce"),
    EventType("delay", "message_event", True, _RELAY_ANSWER, counter="delayed"),
    EventType(
        "policy_rejection", "message_event", True, ("bounce_class", "error_code", "reason"), counter="policy_rejected"
    ),
    EventType("generation_failure", "gen_event", True, ("error_code", "reason"), counter="generation_failed"),
    EventType(
        "generation_rejection",
        "gen_event",
        True,
        ("bounce_class", "error_code", "reason"),
        counter="generation_rejected",
    ),  # fmt: skip
    EventType("open", "track_event", True, _ENGAGEMENT, counter="rendered", unique_counter="unique_rendered"),
    EventType(
        "initial_open",
        "track_event",
        True,
        _ENGAGEMENT,
        counter="initial_rendered",
        unique_counter="unique_initial_rendered",
    ),  # fmt: skip
    EventType("click", "track_event", True, (*_ENGAGEMENT, *_LINK), counter="clicked", unique_counter="unique_clicked"),
    EventType("list_unsubscribe", "unsubscribe_event", True, counter="unsubscribe"),
    EventType("link_unsubscribe", "unsubscribe_event", True, (*_ENGAGEMENT, *_LINK), counter="unsubscribe"),
    EventType("spam_complaint", "message_event", False),
    EventType("out_of_band", "message_event", False, ("bounce_class", "error_code", "reason")),
)

#: name -> EventType.
BY_NAME: dict[str, EventType] = {event.name: event for event in EVENT_TYPES}
#: Every known name: what webhooks may subscribe to and the events search may filter on.
NAMES: tuple[str, ...] = tuple(BY_NAME)
#: The names Engage stores (``tracking_event.type``) and counts.
RECORDED: tuple[str, ...] = tuple(event.name for event in EVENT_TYPES if event.recorded)
#: name -> webhook category.
CATEGORIES: dict[str, str] = {event.name: event.category for event in EVENT_TYPES}
#: Every field some type lists in ``fields``, in the order the events APIs show them
#: (SPEC B §6.3): each type shows its own even when empty, the others only when set.
OPTIONAL_FIELDS: tuple[str, ...] = tuple(
    dict.fromkeys((*_ENGAGEMENT, *_LINK, *_RELAY_ANSWER, *(name for event in EVENT_TYPES for name in event.fields)))
)
#: Tracking-token kind (``mailcore.tokens.KINDS``) -> the types one hit on it records
#: (SPEC A.2, B §6.1); see :func:`hit_types` for the unsubscribe link.
HIT_TYPES: dict[str, tuple[str, ...]] = {
    "open": ("open",),
    "initial_open": ("initial_open",),
    "click": ("click",),
    "unsubscribe": ("list_unsubscribe",),
}


def hit_types(kind: str, *, unsubscribe: bool = False) -> tuple[str, ...]:
    """The types one hit on a token of ``kind`` records: ``HIT_TYPES[kind]``, plus
    ``link_unsubscribe`` for a click on a ``data-msys-unsubscribe`` link (``unsubscribe``).
    Raises KeyError for a kind that is not in ``HIT_TYPES``."""
    types = HIT_TYPES[kind]
    return (*types, "link_unsubscribe") if kind == "click" and unsubscribe else types


def names_in(*categories: str) -> frozenset[str]:
    """The names of the types in any of ``categories`` (webhook categories, SPEC B §6.1)."""
    return frozenset(event.name for event in EVENT_TYPES if event.category in categories)
