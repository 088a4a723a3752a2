"""The WSGI application gunicorn serves (and runserver, through ``WSGI_APPLICATION``).

Django's handler behind ``TrackingFastPath`` (clicks and opens answered by their views without
Django's request cycle; ``engage/fastpath.py``), both wrapped in ``HttpFramingMiddleware`` (HEAD
without a body, chunked request bodies read or refused; ``engage/api/middleware.py``). Importing it runs every system check
(``engage/checks.py``): with a setting in error (no secret key, a malformed tracking key...)
it raises ``SystemCheckError`` naming what to set, and gunicorn stops ("Worker failed to
boot") instead of serving.
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "engage.settings")
django_application = get_wsgi_application()

from engage.api.middleware import HttpFramingMiddleware  # noqa: E402 - needs the settings above
from engage.checks import startup_check  # noqa: E402
from engage.fastpath import TrackingFastPath  # noqa: E402

startup_check()

application = HttpFramingMiddleware(TrackingFastPath(django_application))
