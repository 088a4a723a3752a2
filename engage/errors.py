"""The one error vocabulary of the API (SPEC B §0.2).

Every failure a client can see is an ``EngageError``: an HTTP status, a SparkPost extended
error code (a string), a short ``message`` and a human ``description``. The exception
handler in ``engage.api.handler`` renders them as ``{"errors": [...]}``; views and services
raise them and never build error bodies by hand.
"""

from __future__ import annotations

from typing import Any

from psycopg import errors as pg_errors


class EngageError(Exception):
    status = 400
    code = "1200"
    message = "invalid params"
    default_description = ""

    def __init__(self, description: str | None = None, *, extra: dict[str, Any] | None = None):
        self.description = description if description is not None else self.default_description
        self.extra = extra or {}
        super().__init__(self.description or self.message)

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code, "description": self.description}
        body.update(self.extra)
        return body


class InvalidParams(EngageError):
    status, code, message = 400, "1200", "invalid params"


class InvalidJson(EngageError):
    status, code, message = 400, "1300", "invalid data format/type"
    default_description = "Problems parsing request as json"


class NotUtf8(EngageError):
    status, code, message = 400, "1305", "input not UTF-8"


class InvalidData(EngageError):
    status, code, message = 422, "1300", "invalid data format/type"


class InvalidInput(EngageError):
    """Bad data answered with 400 rather than 422: the suppression list's body and path
    address, as SparkPost answered them (SPEC A.5)."""

    status, code, message = 400, "1300", "invalid data format/type"


class InvalidFieldCombination(EngageError):
    status, code, message = 422, "1301", "invalid combination of fields"


class RequiredFieldMissing(EngageError):
    status, code, message = 422, "1400", "required field is missing"


class RequiredParamMissing(EngageError):
    status, code, message = 400, "1401", "required parameter missing"


class Unauthorized(EngageError):
    status, code, message = 401, "1303", "Unauthorized."
    default_description = "Provide a valid API key in the Authorization header"


class PermissionDenied(EngageError):
    status, code, message = 403, "1100", "Forbidden."
    default_description = "This API key does not have the grant this endpoint needs"


class ComplianceUpdateRefused(PermissionDenied):
    """A suppression entry with source ``Compliance`` is changed only in the admin (SPEC A.5)."""

    message = "Recipient could not be updated - Compliance"
    default_description = "This entry was added by staff for compliance and cannot be changed through the API"


class ComplianceRemoveRefused(PermissionDenied):
    message = "Recipient could not be removed - Compliance"
    default_description = "This entry was added by staff for compliance and cannot be removed through the API"


class InvalidUri(EngageError):
    status, code, message = 404, "1101", "invalid URI"


class MethodNotAllowed(EngageError):
    status, code, message = 405, "1102", "invalid HTTP method"


class NotFound(EngageError):
    status, code, message = 404, "1600", "resource not found"


class RecipientNotFound(NotFound):
    """No suppression-list entry for the address (and type) asked for (SPEC A.5)."""

    message = "Recipient could not be found"


class ResourceInUse(EngageError):
    status, code, message = 409, "1602", "resource in use"


class Conflict(EngageError):
    """A resource with that id already exists (SPEC A.1: 409 / 1602 naming the id)."""

    status, code, message = 409, "1602", "resource conflict"


class SubresourceNotFound(EngageError):
    status, code, message = 422, "1603", "subresource not found"


class UnsupportedMediaType(EngageError):
    status, code, message = 415, "1700", "unsupported Content-Type"
    default_description = "Send the request body as application/json"


class NotAcceptable(EngageError):
    status, code, message = 406, "1800", "header value not acceptable"


class RequestTooLarge(EngageError):
    status, code, message = 413, "1300", "request too large"


class LengthRequired(EngageError):
    """A chunked request body the server cannot read (RFC 9110 §15.5.12)."""

    status, code, message = 411, "1300", "length required"


class RateLimited(EngageError):
    status, code, message = 429, "1502", "too many requests"


class ServerError(EngageError):
    status, code, message = 500, "1500", "internal server error"
    default_description = "The server could not complete the request; it has been logged"


class QueryTimeout(EngageError):
    """A database statement of an API request ran past ``ENGAGE_API_STATEMENT_TIMEOUT_MS``."""

    status, code, message = 503, "1502", "server resources unavailable"


class WriteContention(EngageError):
    """A write PostgreSQL ended as a deadlock's victim, as often as it was retried."""

    status, code, message = 503, "1502", "server resources unavailable"
    default_description = "Other requests were writing the same data at the same time; retry the request"


class TransmissionValidation(EngageError):
    """Returned with HTTP 200 alongside ``results`` when some recipients were rejected."""

    status, code, message = 200, "2000", "transmission created, but with validation errors"


class InvalidTransmissionId(EngageError):
    status, code, message = 400, "2001", "invalid transmission id"


class SubstitutionDataTooLarge(EngageError):
    status, code, message = 422, "2002", "substitution data too large"


class TooCloseToDelete(EngageError):
    status, code, message = 409, "2003", "too close to generation time to delete transmission"


class NoDraftTemplate(EngageError):
    status, code, message = 422, "2004", "no draft version of template"


class NoPublishedTemplate(EngageError):
    status, code, message = 422, "2005", "no published version of template"


class InvalidTransmissionState(EngageError):
    status, code, message = 409, "2006", "transmission database record is in an invalid state for deletion"


class TemplateSyntaxError(EngageError):
    status, code, message = 422, "3000", "substitution language syntax error in template content"


class TemplateRenderError(EngageError):
    status, code, message = 422, "3001", "substitution language render error in template content"


class InvalidHeader(EngageError):
    status, code, message = 422, "3002", "invalid header"


class ListCreatedWithErrors(EngageError):
    status, code, message = 200, "5000", "list created, but with validation errors"


class NoValidRecipients(EngageError):
    status, code, message = 400, "5002", "At least one valid recipient is required"


# --- what a database error was (the API's handler, and services that retry, ask) ------------


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _ in range(5):  # Django chains the driver error as __cause__
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__
    return False


def is_query_canceled(exc: BaseException) -> bool:
    """True for a statement PostgreSQL cancelled (``57014``), as Django wraps it."""
    return _caused_by(exc, pg_errors.QueryCanceled)


def is_deadlock(exc: BaseException) -> bool:
    """True for a transaction PostgreSQL ended as a deadlock's victim (``40P01``), as Django wraps it."""
    return _caused_by(exc, pg_errors.DeadlockDetected)
