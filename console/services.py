"""The console's writes: a send form's transmission, created at most once per form
(``console.models.SendSubmission``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from console.models import SendSubmission
from transmissions.services import CreateResult, transmission_create

#: How long a sent form's token is remembered (a second send of it within this time is refused).
SUBMISSION_KEPT = timedelta(days=7)


@dataclass(frozen=True)
class SendOnce:
    """What :func:`transmission_send_once` did: ``created`` (the service's result) when this
    call created the transmission, else ``earlier``: the id of the transmission an earlier
    use of the same token created."""

    created: CreateResult | None = None
    earlier: int | None = None


def transmission_send_once(
    *, token: str, body: dict[str, Any], user_id: int | None = None, fingerprint: str = ""
) -> SendOnce:
    """Create the transmission of ``body`` (``transmissions.services.transmission_create``)
    unless the send form ``token`` was already used; the token is kept with the sender's
    ``user_id`` and the send's ``fingerprint`` (``console.forms.send_fingerprint``), for
    ``console.selectors.send_recent_duplicate``. The token is claimed by inserting its row
    in the transaction that creates the transmission: a second use waits on the first's row
    until it commits (then it is refused: ``SendOnce(earlier=<id>)``) or rolls back (then it
    creates: the first created nothing). Errors: the service's ``EngageError``, and nothing
    is kept, the token included."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                SendSubmission.objects.create(token=token, user_id=user_id, fingerprint=fingerprint)
        except IntegrityError:
            earlier = SendSubmission.objects.filter(token=token).values_list("transmission_id", flat=True).first()
            return SendOnce(earlier=earlier)
        created = transmission_create(body=body)
        SendSubmission.objects.filter(token=token).update(transmission_id=created.transmission_id)
    # Forms sent over SUBMISSION_KEPT ago are forgotten (a row per console send, kept no longer):
    # sending such a form again sends it again.
    SendSubmission.objects.filter(created_at__lt=timezone.now() - SUBMISSION_KEPT).delete()
    return SendOnce(created=created)
