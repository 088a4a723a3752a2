"""Request declarations at the API edge, and the OpenAPI document made from them (issue 10 §2).

Every API operation declares, with pydantic models, what its query string and body may hold.
The view calls :func:`parse_query` / :func:`parse_body` before any service runs, and the
:func:`operation` decorator hands the same models to drf-spectacular, which writes the OpenAPI
3.1 document served at ``/api/v1/openapi.json`` (browsable at ``/api/v1/docs``). One
declaration, two uses: what is documented is what is checked.

What the declarations check is *shape*: types, enums, bounds, string lengths (in characters:
the byte limits of SPEC B §1.9 stay with the services that own them), required fields. What
they never see is checked before them by the JSON parser (``engage/api/parsers.py``): NUL,
lone surrogates, NaN and Infinity, anywhere in a body. Unknown fields are ignored, as SparkPost
ignores them (SPEC A.1); ``null`` means "not given".

Failures leave in the SparkPost envelope with a description naming the field
(``recipients[3].address.email: ...``):

- a body field missing → 422 / 1400, a body field wrong → 422 / 1300 (SPEC B §0.2);
- a query parameter missing → 400 / 1401, a query parameter wrong → 400 / 1200.

Why pydantic and not DRF serializers: a DRF serializer took about 1 s to check 10,000 inline
recipients, pydantic's core a few milliseconds, and ``bench/accept.py`` may slow by at most
20 % (issue 10); drf-spectacular documents pydantic models through its contrib extension.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import Direction, OpenApiParameter, OpenApiResponse, extend_schema
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from engage import errors
from mailcore.times import offset_problem

if TYPE_CHECKING:
    from drf_spectacular.openapi import AutoSchema

ModelT = TypeVar("ModelT", bound=BaseModel)


class Body(BaseModel):
    """A request body: strict JSON types (``"1"`` is not a number, ``1`` is not a boolean),
    unknown fields ignored, ``null`` accepted wherever a field is optional."""

    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False, frozen=True)


class Query(BaseModel):
    """A query string: values arrive as text and are converted (``limit=5`` is an int,
    ``draft=true`` a boolean); unknown parameters are ignored."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, frozen=True)


def Text(max_length: int, *, min_length: int = 0, description: str = "", pattern: str | None = None) -> Any:  # noqa: N802
    """A string of at most ``max_length`` characters (every stored string declares one)."""
    return Annotated[str, Field(max_length=max_length, min_length=min_length, description=description, pattern=pattern)]


def _check_time_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone '{value}' (use an IANA name such as America/New_York)") from None
    return value


#: An IANA time zone name (``America/New_York``); unknown names are refused.
TimeZone = Annotated[str, Field(max_length=64, description="IANA time zone name"), AfterValidator(_check_time_zone)]


def _check_datetime(value: str) -> str:
    text = value.strip()
    try:
        when = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise ValueError(f"'{value}' is not a date-time (YYYY-MM-DDTHH:MM[:SS][+HH:MM])") from None
    if when.tzinfo is not None:
        try:
            when.astimezone(dt.UTC)
        except OverflowError:
            raise ValueError(f"'{value}' is outside the years 1 to 9999 in UTC") from None
        if (problem := offset_problem(when)) is not None:
            raise ValueError(f"'{value}': {problem}")
    return value


#: An ISO 8601 date-time as SparkPost writes it (``2024-05-01T08:00`` or with an offset);
#: its value in UTC must lie in the years 1 to 9999.
DateTimeText = Annotated[
    str, Field(max_length=64, description="YYYY-MM-DDTHH:MM[:SS][+HH:MM]"), AfterValidator(_check_datetime)
]

#: Free JSON objects (metadata, substitution data); their size limits belong to the services.
JsonObject = dict[str, Any]


_INSTANCE_OF = re.compile(r" or instance of \w+")  # a class name means nothing to a JSON client
_TYPE_TAGS = frozenset({"str", "int", "bool", "float", "dict", "list", "none", "function-after", "json-or-python"})


def _model_names() -> set[str]:
    names, pending = set(), [BaseModel]
    while pending:
        for sub in pending.pop().__subclasses__():
            names.add(sub.__name__)
            pending.append(sub)
    return names


def _fields(loc: Iterable[int | str], models: set[str]) -> tuple[int | str, ...]:
    """``loc`` without pydantic's names for the branches of a union (``constrained-str``,
    ``Address``, ``list[...]``): what is left are the fields and indexes a client wrote."""
    return tuple(
        part
        for part in loc
        if isinstance(part, int)
        or not (part in _TYPE_TAGS or part.startswith("constrained-") or "[" in part or part in models)
    )


def _path(loc: Iterable[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _description(exc: ValidationError) -> tuple[str, bool]:
    """``"<field path>: <what is wrong>"`` for the first field in error. A value that fits no
    branch of a union is told each branch's complaint, unless one branch got further into
    the value (``from: {"email": 5}`` is about ``from.email``, not about ``from``)."""
    found = exc.errors(include_url=False, include_input=False)
    models = _model_names()
    first = _fields(found[0]["loc"], models)
    same_field = [(error, _fields(error["loc"], models)) for error in found]
    same_field = [(error, loc) for error, loc in same_field if loc[: len(first)] == first]
    deepest = max(len(loc) for _error, loc in same_field)
    chosen = [(error, loc) for error, loc in same_field if len(loc) == deepest]
    where = _path(chosen[0][1])
    messages = list(
        dict.fromkeys(_INSTANCE_OF.sub("", error["msg"].removeprefix("Value error, ")) for error, _loc in chosen)
    )
    missing = chosen[0][0]["type"] == "missing"
    message = "is required" if missing else "; or ".join(messages)
    return (f"{where}: {message}" if where else message), missing


def parse_body(request: Any, model: type[ModelT]) -> ModelT:
    """The request body checked against ``model``.

    Errors: the body is not a JSON object → 422 / 1300; a field missing → 422 / 1400; a field
    of the wrong type or out of bounds → 422 / 1300, each naming the field.
    """
    return parse_object(request.data, model)


def parse_object(data: Any, model: type[ModelT]) -> ModelT:
    """``data`` (a request body built elsewhere, e.g. from a console form) checked against
    ``model`` exactly as :func:`parse_body` checks a body, with the same errors."""
    if not isinstance(data, dict):
        raise errors.InvalidData("The request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        description, missing = _description(exc)
        raise (errors.RequiredFieldMissing if missing else errors.InvalidData)(description) from None


def parse_query(request: Any, model: type[ModelT]) -> ModelT:
    """The query string checked against ``model`` (the last value of a repeated parameter;
    an empty value means "not given").

    Errors: a parameter missing → 400 / 1401; a bad value → 400 / 1200, naming the parameter.
    """
    params = {key: value for key, value in request.query_params.items() if value != ""}
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        description, missing = _description(exc)
        raise (errors.RequiredParamMissing if missing else errors.InvalidParams)(description) from None


# --- the document -----------------------------------------------------------------------


class ErrorDetail(BaseModel):
    message: str
    code: str
    description: str = ""


class ErrorEnvelope(BaseModel):
    """Every failure: ``{"errors": [{"message", "code", "description"}]}`` (SPEC A.1)."""

    errors: list[ErrorDetail]


#: Answers any API operation may give besides its own (auth, grants, limits, bad input).
ERROR_STATUSES = (400, 401, 403, 404, 405, 406, 409, 411, 413, 415, 422, 429)


class PydanticSchema(OpenApiSerializerExtension):
    """Documents pydantic models: request bodies as pydantic validates them, responses as
    they are written (drf-spectacular's own contrib uses the serialization form for both)."""

    target_class = "pydantic.BaseModel"
    match_subclasses = True
    priority = 1

    def get_name(self, auto_schema: AutoSchema, direction: Direction) -> str:
        return self.target.__name__

    def map_serializer(self, auto_schema: AutoSchema, direction: Direction) -> dict[str, Any]:
        mode = "validation" if direction == "request" else "serialization"
        schema = self.target.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)
        for name, sub_schema in schema.pop("$defs", {}).items():
            auto_schema.registry.register_on_missing(
                ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=sub_schema)
            )
        return schema


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """The API key in ``Authorization``, raw as SparkPost sends it (SPEC B §10)."""

    target_class = "engage.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {"type": "apiKey", "in": "header", "name": "Authorization"}


def query_parameters(model: type[Query]) -> list[OpenApiParameter]:
    """The query parameters ``model`` declares, for the document."""
    schema = model.model_json_schema(mode="validation")
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", "")
        prop.pop("title", None)
        if prop.get("default", 0) is None:
            del prop["default"]  # an absent parameter is "not given"; there is no null in a query string
        choices = [choice for choice in prop.get("anyOf", ()) if choice != {"type": "null"}]
        if len(choices) == 1:
            del prop["anyOf"]
            prop.update(choices[0])
        parameters.append(
            OpenApiParameter(
                name, type=prop, location=OpenApiParameter.QUERY, required=name in required, description=description
            )
        )
    return parameters


def operation(
    *,
    operation_id: str,
    summary: str,
    body: type[Body] | None = None,
    query: type[Query] | None = None,
    response: type[BaseModel] | dict | None = None,
    status: int = 200,
    tags: list[str] | None = None,
    description: str = "",
) -> Callable:
    """Document one view method: its body and query declarations, its success answer and
    every error answer (the envelope). ``response`` None with ``status`` 204 is no content.
    ``operation_id`` names it in the document (``templates_list``)."""
    responses: dict[int, Any] = {
        code: OpenApiResponse(ErrorEnvelope, description="error envelope") for code in ERROR_STATUSES
    }
    responses[status] = None if status == 204 else (response if response is not None else dict)
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        description=description or summary,
        request=body,
        parameters=query_parameters(query) if query is not None else None,
        responses=responses,
        tags=tags,
    )


_SPEC_NOTE = re.compile(r"\s*\(SPEC [AB][^)]*\)|^SPEC [AB][\s§\d.,]*[:;]\s*")
_RST_LITERAL = re.compile(r"``([^`]+)``")


def _for_readers(text: str) -> str:
    return _RST_LITERAL.sub(r"`\1`", _SPEC_NOTE.sub("", text))


def public_descriptions(result: dict, generator: Any, request: Any, public: bool) -> dict:
    """drf-spectacular post-processing hook: the document's descriptions come from the
    declarations' docstrings, written for Engage's developers; readers of the document get
    them without the pointers into Engage's contract file (``(SPEC B §1.3)``) and with
    Markdown code spans instead of reStructuredText literals."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: _for_readers(value)
                if key in ("description", "summary") and isinstance(value, str)
                else walk(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    return walk(result)
