"""The console's send form (``/transmissions/new/``): what a person chooses, turned into the body
``POST /api/v1/transmissions`` takes (SPEC B §1.1). The form checks only what the API has no
words for (a choice among the published templates and the stored lists, the date-time input in
UTC, a list *or* typed addresses); everything else is left to the API's own declaration
(``transmissions.schemas.TransmissionCreate``) and service (``transmission_create``), so the page
refuses exactly what the API refuses, with its messages."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.conf import settings
from django.utils import timezone

from mailcore.addresses import split_address
from recipient_lists.recipients import normalize_recipient
from recipient_lists.selectors import recipient_list_list
from templates_app.selectors import template_list

#: The three answers of a tri-state option: not given (the template, then the server
#: decides: ``mailcore.options.effective_options``), on, off.
_ON, _OFF = "on", "off"
_DATE_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"\d{2}:\d{2}(?::\d{2})?")
#: The hidden one-time token of the send form (``console.models.SendSubmission``).
_SUBMISSION = re.compile(r"[A-Za-z0-9_-]{16,64}")
_LINE_INDEX = re.compile(r"^recipients\[\d+\]: ")


def _tri_state(label: str, default: bool, help_text: str) -> forms.ChoiceField:
    choices = [("", f"as the template says, else {'on' if default else 'off'}"), (_ON, "on"), (_OFF, "off")]
    return forms.ChoiceField(label=label, choices=choices, required=False, help_text=help_text)


def _when_text(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def parse_start_time(day: str, clock: str, *, now: datetime) -> datetime | None:
    """The send's start from the form's ``start_date`` (``YYYY-MM-DD``) and ``start_time``
    (``HH:MM[:SS]``, 24-hour), both text inputs, read as UTC; None when both are blank
    (send now). A raw POST may instead give the whole ``YYYY-MM-DD[T ]HH:MM[:SS]`` in
    ``start_time`` (the API's shape) with no ``start_date``.

    Raises ``forms.ValidationError`` naming what is wrong: a date without a time or a time
    without a date (a half-filled "Send later" is never read as "now"), text that is no date
    or time, or a moment before ``now``'s minute (aware; it would start at once, not then)."""
    day, clock = day.strip(), clock.strip()
    if not day and _DATE_TIME.fullmatch(clock):
        day, clock = clock[:10], clock[11:]
    elif not day and _DATE.fullmatch(clock):
        day, clock = clock, ""
    typed = f"{day} {clock}".strip()[:60]
    if (day and not _DATE.fullmatch(day)) or (clock and not _TIME.fullmatch(clock)):
        raise forms.ValidationError(f"'{typed}' is not a date and time: use YYYY-MM-DD and HH:MM, in UTC")
    if not day and not clock:
        return None
    if not clock:
        raise forms.ValidationError(
            f"Send later has a date ({day}) but no time: give the time too (HH:MM, UTC), or clear the date to send now."
        )
    if not day:
        raise forms.ValidationError(
            f"Send later has a time ({clock}) but no date: give the date too (YYYY-MM-DD), or clear the time to send now."
        )
    try:
        moment = datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=UTC)
    except ValueError:
        raise forms.ValidationError(f"'{typed}' is not a date and time: use YYYY-MM-DD and HH:MM, in UTC") from None
    if moment < now.astimezone(UTC).replace(second=0, microsecond=0):
        raise forms.ValidationError(
            f"Send later is in the past: {_when_text(moment)} is before now ({_when_text(now.astimezone(UTC))}). "
            "Choose a later time, or clear the date and time to send now."
        )
    return moment


def submission_token() -> str:
    """A new one-time token for a rendered send form (URL-safe, 24 characters)."""
    return secrets.token_urlsafe(18)


class SendForm(forms.Form):
    """A published template, a stored list or typed addresses, and the transmission's options.
    ``initial`` may name a template (``?template=``) and a list (``?list=``)."""

    template = forms.ChoiceField(
        label="Template",
        help_text="Only published templates can be sent; its published version is sent.",
        error_messages={"invalid_choice": "That template does not exist or is not published."},
    )
    recipient_list = forms.ChoiceField(
        label="Recipient list",
        required=False,
        error_messages={"invalid_choice": "That recipient list does not exist."},
    )
    addresses = forms.CharField(
        label="Or these addresses",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60, "placeholder": "ada@example.com\nBob <bob@example.com>"}),
        help_text="One address a line (ada@example.com or Ada &lt;ada@example.com&gt;), instead of a list.",
    )
    campaign_id = forms.CharField(label="Campaign", required=False, help_text="Optional; at most 64 bytes.")
    description = forms.CharField(
        label="Description",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Optional; at most 1024 bytes.",
    )
    open_tracking = _tri_state("Open tracking", settings.ENGAGE_OPEN_TRACKING, "A pixel records opens.")
    click_tracking = _tri_state(
        "Click tracking", settings.ENGAGE_CLICK_TRACKING, "Links are rewritten to record clicks."
    )
    transactional = _tri_state(
        "Transactional", False, "Transactional mail has no unsubscribe link and ignores non-transactional opt-outs."
    )
    # Text inputs, not the browser's date and time pickers: those show the browser's locale
    # (06/01/2030, 10:30 AM) beside the "UTC" label; the format asked for is the one read.
    start_date = forms.CharField(
        label="Send later on",
        label_suffix="",
        required=False,
        widget=forms.TextInput(
            attrs={"placeholder": "YYYY-MM-DD", "pattern": _DATE.pattern, "inputmode": "numeric",
                   "autocomplete": "off", "size": 12, "aria-describedby": "when-help"}
        ),
    )  # fmt: skip
    start_time = forms.CharField(
        label="at",
        label_suffix="",
        required=False,
        widget=forms.TextInput(
            attrs={"placeholder": "HH:MM", "pattern": _TIME.pattern, "inputmode": "numeric",
                   "autocomplete": "off", "size": 7, "aria-describedby": "when-help"}
        ),
        help_text="Leave both empty to send now. The date as YYYY-MM-DD and the time as HH:MM on a 24-hour clock "
        "(2030-06-01 and 14:30), in UTC (not your local time), not in the past; a scheduled send can be canceled "
        "from its page until shortly before it starts.",
    )  # fmt: skip
    resend = forms.BooleanField(
        label="Send it again anyway",
        required=False,
        help_text="The same template, recipients and campaign were sent a few minutes ago: send them again.",
    )
    send_empty = forms.CharField(  # the box's value: console.selectors.send_empty_confirmation
        label="Send with them empty",
        required=False,
        max_length=64,
        help_text="The template reads data that no recipient supplies: send anyway, with it empty.",
    )
    submission = forms.CharField(
        widget=forms.HiddenInput,
        error_messages={"required": "This form has no submission token: reload the send page and send again."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        templates = template_list(draft=False).values_list("id", "name")
        self._choose(
            "template",
            [("", "— choose a published template —")]
            + [(pk, pk if name == pk else f"{pk} — {name}") for pk, name in templates],
        )
        lists = recipient_list_list().values_list("id", "name", "total_accepted_recipients")
        self._choose(
            "recipient_list",
            [("", "— none: the addresses below —")]
            + [(pk, f"{pk} — {name} ({total} recipients)") for pk, name, total in lists],
        )

    def _choose(self, name: str, choices: list[tuple[str, str]]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices

    def clean_submission(self) -> str:
        token = self.cleaned_data["submission"]
        if not _SUBMISSION.fullmatch(token):
            raise forms.ValidationError(
                "This form's submission token is not valid: reload the send page and send again."
            )
        return token

    def clean_addresses(self) -> list[str]:
        """The typed addresses, each judged by the code that judges a recipient of the API
        (``normalize_recipient``): one that would be rejected refuses the form, naming its line,
        rather than sending to the others."""
        lines = [(number, line.strip()) for number, line in enumerate(self.cleaned_data["addresses"].splitlines(), 1)]
        typed = [(number, line) for number, line in lines if line]
        problems = []
        for index, (number, line) in enumerate(typed):
            _recipient, error = normalize_recipient({"address": line}, index)
            if error is not None:
                problems.append(f"line {number}: {_LINE_INDEX.sub('', error.description)}")
        if problems:
            raise forms.ValidationError(
                problems[:20] + ([f"and {len(problems) - 20} more"] if len(problems) > 20 else [])
            )
        return [line for _number, line in typed]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "start_date" in cleaned and "start_time" in cleaned:
            try:
                cleaned["start_time"] = parse_start_time(
                    cleaned.pop("start_date"), cleaned["start_time"], now=timezone.now()
                )
            except forms.ValidationError as exc:
                cleaned.pop("start_time")
                self.add_error("start_time", exc)
        if "addresses" in cleaned and "recipient_list" in cleaned:
            if cleaned["addresses"] and cleaned["recipient_list"]:
                raise forms.ValidationError("Choose a recipient list or type addresses, not both.")
            if not cleaned["addresses"] and not cleaned["recipient_list"]:
                raise forms.ValidationError("Choose a recipient list or type at least one address.")
        return cleaned


def send_fingerprint(cleaned: dict[str, Any]) -> str:
    """What a valid :class:`SendForm` sends, as 64 hex digits (SHA-256): its template, its
    recipient list or the set of its typed addresses (their emails, lower case, in any order
    and with any names), and its campaign. Two sends with the same fingerprint reach the same
    people with the same mail; the options, description and start time do not count."""
    emails = sorted({split_address(line)[1].strip().lower() for line in cleaned["addresses"]})
    what = [cleaned["template"], cleaned["recipient_list"], emails, cleaned["campaign_id"]]
    return hashlib.sha256(json.dumps(what).encode()).hexdigest()


def send_body(cleaned: dict[str, Any]) -> dict[str, Any]:
    """The ``POST /api/v1/transmissions`` body of a valid :class:`SendForm`: only what was
    given (an option left "as the template says" is absent, as an API client leaves it out)."""
    recipients: Any = (
        {"list_id": cleaned["recipient_list"]}
        if cleaned["recipient_list"]
        else [{"address": address} for address in cleaned["addresses"]]
    )
    body: dict[str, Any] = {"content": {"template_id": cleaned["template"]}, "recipients": recipients}
    for key in ("campaign_id", "description"):
        if cleaned[key]:
            body[key] = cleaned[key]
    options: dict[str, Any] = {
        key: cleaned[key] == _ON for key in ("open_tracking", "click_tracking", "transactional") if cleaned[key]
    }
    if cleaned["start_time"] is not None:
        options["start_time"] = cleaned["start_time"].isoformat()
    if options:
        body["options"] = options
    return body
