"""The console reads and acts through the apps below it; the one thing it keeps is which send
form was already sent (:class:`SendSubmission`), so that sending it twice sends once."""

from __future__ import annotations

from django.db import models


class SendSubmission(models.Model):
    """One send form (``/transmissions/new/``) that was sent: its one-time ``token`` (the
    form's hidden ``submission`` field, made when the form was rendered) and the transmission
    it created. The primary key makes a second use of a token fail on insert, whatever the
    timing (``console.services.transmission_send_once``)."""

    token = models.CharField(max_length=64, primary_key=True)
    transmission_id = models.BigIntegerField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)
