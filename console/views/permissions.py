"""What a console page that changes something asks beyond staff status: a Django permission
on the model it changes (``/admin/auth/user/`` grants them; a superuser has all). A staff user
without it gets the console's 403 page and the page hides the link or button that leads there.
Reading pages ask for staff status alone."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from console.pages import SEND

__all__ = ["CANCEL", "SEND", "forbidden", "permission_page"]  # SEND: console.pages owns it (its Send page)

#: Cancel a scheduled transmission: the ``change`` permission on ``Transmission``.
CANCEL = "transmissions.change_transmission"
#: Each permission as the admin's user page lists it, and what it lets a person do.
NAMES = {
    SEND: ("Transmissions | transmission | Can add transmission", "send transmissions"),
    CANCEL: ("Transmissions | transmission | Can change transmission", "cancel scheduled transmissions"),
}


def forbidden(request: HttpRequest, perm: str) -> HttpResponse:
    """403: the console's page saying what the signed-in user may not do and which permission
    an administrator grants for it."""
    admin_name, doing = NAMES[perm]
    context = {"doing": doing, "permission": admin_name, "username": request.user.get_username()}
    return render(request, "console/403.html", context, status=403)


def permission_page(perm: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A view's decorator (under ``staff_member_required``): without ``perm`` (one of
    :data:`NAMES`), :func:`forbidden` answers and the view does nothing."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.has_perm(perm):
                return forbidden(request, perm)
            return view(request, *args, **kwargs)

        return guarded

    return decorate
