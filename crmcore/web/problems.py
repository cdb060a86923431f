"""Errors as RFC 9457 ``application/problem+json``, with the CLI's one-line messages.

Every :class:`~crmcore.errors.CRMError` maps to one 4xx status; request validation
errors name the field; nothing a client sends can produce a 500 with a traceback.
A hidden customer and a missing one both answer 404 with the same text.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from crmcore import errors

PROBLEM_JSON = "application/problem+json"


class PreconditionFailed(errors.CRMError):
    """``If-Match`` names another version than the current one (412)."""


class PreconditionRequired(errors.CRMError):
    """An update sent without ``If-Match`` (428)."""


# most specific first: the first class an error is an instance of decides
STATUS_OF: tuple[tuple[type[errors.CRMError], int], ...] = (
    (PreconditionFailed, 412),
    (PreconditionRequired, 428),
    (errors.NotFound, 404),
    (errors.AccessDenied, 403),
    (errors.Conflict, 409),
    (errors.TransitionError, 409),
    (errors.RetryableError, 503),
    (errors.ValidationError, 422),
    (errors.ConfigError, 422),
    (errors.SchemaError, 503),
    (errors.MissingExtra, 501),
    (errors.CRMError, 400),
)

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    428: "Precondition Required",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
}

# the error answers every operation may give, for the OpenAPI description
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": TITLES[status],
        "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}},
    }
    for status in (400, 401, 403, 404, 409, 412, 413, 422, 428, 429)
}


def problem(
    status: int,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response: ``title`` from the status, ``detail`` the one line."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_of(error: errors.CRMError) -> int:
    """The HTTP status a CRM error answers with."""
    for cls, status in STATUS_OF:
        if isinstance(error, cls):
            return status
    return 400


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def validation_detail(exc: RequestValidationError) -> str:
    """One line naming the first field that is wrong and what is wrong with it."""
    errs = exc.errors()
    if not errs:
        return "the request is not valid"
    first = errs[0]
    where = _location(first.get("loc", ()))
    msg = str(first.get("msg", "is not valid"))
    more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
    return f"{where}: {msg}{more}"


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    @app.exception_handler(errors.CRMError)
    async def crm_error(request: Request, exc: errors.CRMError) -> JSONResponse:
        return problem(status_of(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(422, validation_detail(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return problem(500, "internal error; the change, if any, was rolled back")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "")
        return problem(exc.status_code, detail, headers=dict(exc.headers or {}))
