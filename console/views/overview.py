"""The front door (issue 15, Deliver 1): ``/`` for a signed-in staff user."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@staff_member_required
def overview(request: HttpRequest) -> HttpResponse:
    return render(request, "console/overview.html", {})
