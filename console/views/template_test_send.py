"""The template editor's test send (issue 15, Deliver 5): one real transmission of a stored
template to one address, through ``transmissions.services.transmission_create`` as
``POST /api/v1/transmissions`` makes it. It lives in the console because the template admin
(``templates_app``) sits below transmissions and may not call it."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.cache import cache
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST
from redis.exceptions import RedisError

from console.selectors import template_data_missing
from engage import errors
from mailcore.ids import TEST_SEND_CAMPAIGN
from templates_app.models import Template
from templates_app.rendering import sample_data, sample_recipient
from transmissions.services import transmission_create

# The window of ENGAGE_TEST_SENDS_PER_MINUTE, in seconds.
_WINDOW = 60

log = logging.getLogger(__name__)


def test_send_allowed(*, user_id: int | str) -> bool:
    """Whether the user ``user_id`` may make one more test send: at most
    ``ENGAGE_TEST_SENDS_PER_MINUTE`` in a minute that starts at the first of them, counted in
    the Redis cache. While Redis does not answer the send is let through (logged), as the
    API's rate limit does (``engage.api.auth.ApiKeyRateThrottle``)."""
    key = f"console:test-sends:{user_id}"
    try:
        cache.add(key, 0, timeout=_WINDOW)
        return int(cache.incr(key)) <= settings.ENGAGE_TEST_SENDS_PER_MINUTE
    except ValueError:  # the key expired between add and incr: a new window
        cache.add(key, 1, timeout=_WINDOW)
        return True
    except (RedisError, OSError) as exc:
        log.warning("test send rate not checked (Redis: %s): let through", exc)
        return True


def test_send_body(*, template: Template, address: str, substitution_data: dict, user: str, name: str = "") -> dict:
    """The transmission a test send creates: the template's draft when it has one (else its
    published version), to ``address`` alone (with the display name ``name``, the sample's
    recipient's: ``{{address.name}}`` reads as in the preview), with the sample data as the
    transmission's ``substitution_data`` (SPEC B §1.1)."""
    return {
        "campaign_id": TEST_SEND_CAMPAIGN,
        "description": f"Test send of {template.pk} by {user}"[:1024],
        "content": {"template_id": template.pk, "use_draft_template": template.has_draft},
        "substitution_data": substitution_data,
        "recipients": [{"address": {"email": address, "name": name} if name else {"email": address}}],
    }


@staff_member_required
@require_POST
def template_test_send(request: HttpRequest, template_id: str) -> HttpResponseRedirect:
    """POST ``address`` and ``substitution_data`` (JSON text): creates the transmission and
    goes back to the template's admin page with its id and a link to ``/transmissions/<id>/``,
    or with the error (a bad address, bad JSON, a template that does not render...)."""
    template = get_object_or_404(Template, pk=template_id)
    back = HttpResponseRedirect(reverse("admin:templates_app_template_change", args=[template.pk]))
    if not request.user.has_perm("templates_app.change_template"):
        messages.error(request, "You may not send templates.")
        return back
    if not test_send_allowed(user_id=str(request.user.pk)):
        limit = settings.ENGAGE_TEST_SENDS_PER_MINUTE
        messages.error(
            request, f"Test send refused: at most {limit} test sends a minute per user. Try again in a minute."
        )
        return back
    try:
        data, sample_address = sample_recipient(sample_data(request.POST.get("substitution_data") or ""))
    except errors.InvalidJson as exc:
        messages.error(request, f"Sample data is not valid JSON: {exc.description}")
        return back
    address = (request.POST.get("address") or "").strip()
    body = test_send_body(
        template=template,
        address=address,
        substitution_data=data,
        user=request.user.get_username(),
        name=sample_address["name"],
    )
    try:
        result = transmission_create(body=body)
    except errors.EngageError as exc:
        detail = exc.extra.get("rcpt_to_errors")
        reason = f"{exc.description}: {detail[0]['description']}" if detail else exc.description
        messages.error(request, f"Test send failed: {reason}")
        return back
    tid = result.transmission_id
    messages.success(
        request,
        format_html('Test send to {} queued: transmission <a href="/transmissions/{}/">{}</a>.', address, tid, tid),
    )
    if missing := template_data_missing(
        template=template,
        draft=template.has_draft,
        substitution_data=data,
        address={"email": address, "name": sample_address["name"]},
    ):
        messages.warning(request, f"The sample data lacked {', '.join(missing)}: sent empty.")
    return back
