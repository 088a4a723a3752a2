"""The send page, ``/transmissions/new/`` (issue 15, Done when: start a transmission or schedule
one with a browser alone): a published template to a stored list or typed addresses, now or
later. The form (``console.forms.SendForm``) becomes the body a client would POST to
``/api/v1/transmissions``; it is checked by that operation's declaration
(``transmissions.schemas.TransmissionCreate``) and stored by its service (``transmission_create``,
once per rendered form: ``console.services.transmission_send_once``), so the limits, errors and
events are the API's. Success goes to the transmission's page.

Typed addresses carry no substitution data: when the template reads names that none of them
supplies (``console.selectors.send_data_missing``, the template editor's check of missing
sample data), the form comes back listing them, and sends only with "Send with them empty"
(its ``send_empty`` field), ticked for that template and those names: a form whose template
or names changed since is asked again.

The same send again (Back, then Send: a new form, the fields restored by the browser) is asked
about first: when the same user sent the same template to the same recipients with the same
campaign in the last ``console.selectors.RESEND_WINDOW``, the form comes back naming that
transmission, and sends only with "Send it again anyway" (its ``resend`` field).
"""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.defaultfilters import pluralize
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from console.forms import SendForm, send_body, send_fingerprint, submission_token
from console.selectors import send_data_missing, send_empty_confirmation, send_recent_duplicate, send_token_used
from console.services import transmission_send_once
from console.templatetags.console import when
from console.views.permissions import SEND, permission_page
from engage import errors
from engage.api.schema import parse_object
from transmissions.schemas import TransmissionCreate


def error_lines(exc: errors.EngageError) -> list[str]:
    """An API error as the form shows it: ``message (code): description``, then each rejected
    recipient's reason (``rcpt_to_errors``), at most ten."""
    lines = [f"{exc.message} ({exc.code}): {exc.description}"]
    lines += [f"{item.get('description', '')}" for item in (exc.extra.get("rcpt_to_errors") or [])[:10]]
    return lines


def _ago(seconds: float) -> str:
    """How long ago, in whole minutes: ``"under a minute ago"``, ``"1 minute ago"``, ``"7 minutes ago"``."""
    minutes = int(seconds // 60)
    return "under a minute ago" if minutes < 1 else f"{minutes} minute{pluralize(minutes)} ago"


def _when(start_time: datetime | None) -> str:
    return f"scheduled for {when(start_time)}" if start_time else "sending now"


@staff_member_required
@permission_page(SEND)
@require_http_methods(["GET", "HEAD", "POST"])
def transmission_new(request: HttpRequest) -> HttpResponse:
    """GET: the form (``?template=`` and ``?list=`` preselect) with a new one-time
    ``submission`` token. POST: create, then 303 to ``/transmissions/<id>/``; a refused form is
    shown again with its errors and the input kept (400); a form whose token was already sent
    (a double click, Back then Send) creates nothing and goes to the transmission it created,
    saying so; the same send as one the user made in the last ten minutes creates nothing
    without the ``resend`` box (409, the form kept, the earlier transmission named); typed
    addresses to a template that reads names none of them supplies create nothing without the
    ``send_empty`` box (409, the form kept, the names listed), asked before the resend. Needs the
    permission to add transmissions (``console.views.permissions.SEND``)."""
    if request.method != "POST":
        form = SendForm(
            initial={
                "template": request.GET.get("template", ""),
                "recipient_list": request.GET.get("list", ""),
                "submission": submission_token(),
            }
        )
        return render(request, "console/transmission_new.html", {"form": form})
    form = SendForm(request.POST)
    if form.is_valid():
        body = send_body(form.cleaned_data)
        token, fingerprint = form.cleaned_data["submission"], send_fingerprint(form.cleaned_data)
        try:
            parse_object(body, TransmissionCreate)
            template_id = form.cleaned_data["template"]
            missing = (
                send_data_missing(template_id=template_id, addresses=form.cleaned_data["addresses"])
                if form.cleaned_data["addresses"]
                else []
            )
            confirm = send_empty_confirmation(template_id=template_id, missing=missing) if missing else ""
            if missing and form.cleaned_data["send_empty"] != confirm:
                context = {"form": form, "missing": missing, "confirm": confirm}
                return render(request, "console/transmission_new.html", context, status=409)
            earlier = (
                None
                if form.cleaned_data["resend"] or send_token_used(token=token)
                else send_recent_duplicate(user_id=request.user.pk, fingerprint=fingerprint, now=timezone.now())
            )
            if earlier is not None:
                context = {
                    "form": form,
                    "earlier": earlier,
                    "ago": _ago((timezone.now() - earlier.created_at).total_seconds()),
                }
                return render(request, "console/transmission_new.html", context, status=409)
            sent = transmission_send_once(token=token, body=body, user_id=request.user.pk, fingerprint=fingerprint)
        except errors.EngageError as exc:
            for line in error_lines(exc):
                form.add_error(None, line)
        else:
            if sent.created is None:
                messages.warning(
                    request,
                    f"This form was already sent: it created transmission {sent.earlier}, and nothing was sent "
                    "again. To send another, open the Send page anew.",
                )
                return HttpResponseRedirect(
                    f"/transmissions/{sent.earlier}/" if sent.earlier else "/transmissions/", status=303
                )
            created = sent.created
            tid = created.transmission_id
            when = _when(form.cleaned_data["start_time"])
            messages.success(
                request,
                f"Transmission {tid} created: {created.accepted} recipient{pluralize(created.accepted)}, {when}.",
            )
            if created.rejected:
                messages.error(
                    request,
                    f"{created.rejected} recipient{pluralize(created.rejected)} {pluralize(created.rejected, 'was,were')} rejected: "
                    + "; ".join(item.get("description", "") for item in created.rcpt_errors[:10]),
                )
            return HttpResponseRedirect(f"/transmissions/{tid}/", status=303)
    return render(request, "console/transmission_new.html", {"form": form}, status=400)
