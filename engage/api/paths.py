"""Which request paths belong to the API: the one rule that the API's middleware (trailing
slash, CSRF, body limit, NUL refusal, statement timeout) and the error pages read, so a path
answers SparkPost's JSON envelope everywhere or nowhere."""

from __future__ import annotations


def is_api_path(path: str) -> bool:
    """Whether ``path`` (``request.path_info``: the path below the script prefix) is under the
    API: ``/api`` itself or anything below ``/api/``. ``/apiary`` is not."""
    return path == "/api" or path.startswith("/api/")
