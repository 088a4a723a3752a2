"""The send page, ``/transmissions/new/`` (issue 15, Done when: start a transmission or schedule
one with a browser alone): a published template to a stored list or typed addresses, now or
later. The form (``console.forms.SendForm``) becomes the body a client would POST to
``/api/v1/transmissions``; it is checked by that operation's declaration
(``transmissions.schemas.TransmissionCreate``) and stored by its service (``transmission_create``),
so the limits, errors and events are the API's. Success goes to the transmission's page.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from console.forms import SendForm, send_body
from engage import errors
from engage.api.schema import parse_object
from transmissions.schemas import TransmissionCreate
from transmissions.services import transmission_create


def error_lines(exc: errors.EngageError) -> list[str]:
    """An API error as the form shows it: ``message (code): description``, then each rejected
    recipient's reason (``rcpt_to_errors``), at most ten."""
    lines = [f"{exc.message} ({exc.code}): {exc.description}"]
    lines += [f"{item.get('description', '')}" for item in (exc.extra.get("rcpt_to_errors") or [])[:10]]
    return lines


@staff_member_required
@require_http_methods(["GET", "HEAD", "POST"])
def transmission_new(request: HttpRequest) -> HttpResponse:
    """GET: the form (``?template=`` and ``?list=`` preselect). POST: create, then 303 to
    ``/transmissions/<id>/``; a refused form is shown again with its errors and the input kept
    (400)."""
    if request.method != "POST":
        form = SendForm(
            initial={"template": request.GET.get("template", ""), "recipient_list": request.GET.get("list", "")}
        )
        return render(request, "console/transmission_new.html", {"form": form})
    form = SendForm(request.POST)
    if form.is_valid():
        body = send_body(form.cleaned_data)
        try:
            parse_object(body, TransmissionCreate)
            created = transmission_create(body=body)
        except errors.EngageError as exc:
            for line in error_lines(exc):
                form.add_error(None, line)
        else:
            tid = created.transmission_id
            when = (
                f"scheduled for {form.cleaned_data['start_time']:%Y-%m-%d %H:%M:%S} UTC"
                if form.cleaned_data["start_time"]
                else "sending now"
            )
            messages.success(request, f"Transmission {tid} created: {created.accepted} recipients, {when}.")
            if created.rejected:
                messages.error(
                    request,
                    f"{created.rejected} recipients were rejected: "
                    + "; ".join(item.get("description", "") for item in created.rcpt_errors[:10]),
                )
            return HttpResponseRedirect(f"/transmissions/{tid}/", status=303)
    return render(request, "console/transmission_new.html", {"form": form}, status=400)
