"""FastAPI dependencies: the CRM acting as the request's principal.

Every operation of the core and of the plugins takes ``crm = Depends(request_crm)``:
the principal is resolved from the request's credentials exactly as ``--as`` is
on the command line, so the access filter, masking and audit hold unchanged.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request

SIGN_IN_REQUIRED = "sign in first: send 'Authorization: Bearer <token>' (crm token create)"


def base_crm(request: Request) -> Any:
    """The process's CRM (engine, plugins, clock), acting as nobody in particular."""
    return request.app.state.crm


def authenticate(request: Request) -> str:
    """The staff key the request's credentials prove, or 401.

    The application's authenticator (``app.state.authenticate``) decides; without
    one every request is refused (fail closed)."""
    authenticator = getattr(request.app.state, "authenticate", None)
    key = authenticator(request) if authenticator is not None else None
    if not key:
        raise HTTPException(401, SIGN_IN_REQUIRED, headers={"WWW-Authenticate": "Bearer"})
    return str(key)


def operation_name(request: Request) -> str:
    """What the audit trail records as the cause: ``api:<METHOD> <route path>``."""
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    return f"api:{request.method} {path}"


def request_crm(request: Request) -> Any:
    """The CRM acting as the signed-in staff member, for this request."""
    key = authenticate(request)
    return base_crm(request).as_(key, command=operation_name(request))
