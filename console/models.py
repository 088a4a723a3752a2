"""The console reads and acts through the apps below it; the one thing it keeps is which send
form was already sent (:class:`SendSubmission`), so that sending it twice sends once, and
what it sent, so that sending the same again soon asks first."""

from __future__ import annotations

from django.db import models


class SendSubmission(models.Model):
    """One send form (``/transmissions/new/``) that was sent: its one-time ``token`` (the
    form's hidden ``submission`` field, made when the form was rendered) and the transmission
    it created. The primary key makes a second use of a token fail on insert, whatever the
    timing (``console.services.transmission_send_once``). ``user_id`` (who sent it) and
    ``fingerprint`` (``console.forms.send_fingerprint``: the template, the list or the set of
    typed addresses, the campaign) let a second send of the same thing by the same user within
    ``console.selectors.RESEND_WINDOW`` be asked about first (``send_recent_duplicate``)."""

    token = models.CharField(max_length=64, primary_key=True)
    transmission_id = models.BigIntegerField(null=True)
    user_id = models.IntegerField(null=True)
    fingerprint = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
