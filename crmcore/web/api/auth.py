"""Signing in and out of the browser session, and ``GET /me``."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import Field
from pydantic import ValidationError as ModelError
from starlette.concurrency import run_in_threadpool

from crmcore.auth.passwords import LockedOut, SignInRefused, sign_in
from crmcore.auth.secrets import same
from crmcore.auth.sessions import csrf_token, end_session, start_session
from crmcore.auth.settings import WebSettings
from crmcore.web.api.common import Strict
from crmcore.web.authn import CSRF_HEADER, CSRF_REFUSED, SESSION_COOKIE
from crmcore.web.deps import request_crm
from crmcore.web.problems import problem, validation_detail

router = APIRouter(tags=["auth"])
Crm = Depends(request_crm)

LOGIN_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/LoginIn"}},
        "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/LoginIn"}},
    },
}


class LoginIn(Strict):
    """A staff key and its password."""

    staff: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class SignedIn(Strict):
    """The session that was started; send ``csrf_token`` in X-CSRF-Token."""

    staff: str
    csrf_token: str
    expires_at: str


class Me(Strict):
    """The member of staff the request acts as."""

    key: str
    staff_id: int | None
    roles: list[str]
    team: str | None
    scope: str
    permissions: list[str]


async def _login_body(request: Request) -> dict[str, Any]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if kind == "application/x-www-form-urlencoded":
        form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in form.items()}
    import json

    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ValueError("body: expected a JSON object {staff, password} or a form")
    return data


@router.post(
    "/auth/login",
    response_model=SignedIn,
    openapi_extra={"requestBody": LOGIN_BODY},
    responses={401: {"description": "wrong staff key or password"}, 429: {"description": "locked"}},
)
async def login(request: Request) -> Any:
    """Sign in with a password (JSON or form); sets the session cookie."""
    try:
        body = LoginIn.model_validate(await _login_body(request))
    except ValueError as e:
        detail = (
            validation_detail(RequestValidationError(e.errors()))
            if isinstance(e, ModelError)
            else str(e)
        )
        return problem(422, detail)
    settings: WebSettings = request.app.state.web_settings
    crm = request.app.state.system_crm
    address = request.client.host if request.client else "unknown"
    try:
        key = await run_in_threadpool(
            sign_in, crm, body.staff, body.password, address=address, settings=settings
        )
    except LockedOut as e:
        return problem(429, str(e), headers={"Retry-After": str(e.retry_after)})
    except SignInRefused as e:
        return problem(401, str(e))
    secret, expires_at = await run_in_threadpool(
        start_session, crm, key, hours=settings.session_hours, address=address
    )
    response = JSONResponse(
        {"staff": key, "csrf_token": csrf_token(secret), "expires_at": expires_at.isoformat()}
    )
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(settings.session_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https" or settings.secure_cookies,
        path="/",
    )
    return response


@router.post("/auth/logout", status_code=204, responses={403: {"description": "no CSRF token"}})
def logout(request: Request) -> Response:
    """End the browser session (at once, in every process) and clear its cookie."""
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        if not same(request.headers.get(CSRF_HEADER, ""), csrf_token(secret)):
            return problem(403, CSRF_REFUSED)
        end_session(request.app.state.system_crm, secret)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me", response_model=Me)
def me(crm: Any = Crm) -> dict[str, Any]:
    """Who the request acts as: key, roles, scope and permissions."""
    p = crm.staff.acting_principal()
    return {
        "key": p.key,
        "staff_id": p.staff_id,
        "roles": list(p.roles),
        "team": p.team,
        "scope": p.scope,
        "permissions": sorted(p.permissions),
    }
