"""Turning a request's credentials into a staff key: a personal access token
(``Authorization: Bearer crm_...``) or a session cookie set by
``POST /api/v1/auth/login``.

A token's scopes limit the methods it may use (``read``: GET, HEAD, OPTIONS;
``write``: the rest). A cookie-authenticated unsafe request must echo the
session's CSRF token in ``X-CSRF-Token``. Whatever proved it, the staff key is
then used exactly like ``--as``: ``base_crm.as_(key)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import HTTPException, Request

from crmcore.auth.secrets import same
from crmcore.auth.sessions import csrf_token, session_caller
from crmcore.auth.tokens import token_caller

SESSION_COOKIE = "crm_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
READ_ONLY_TOKEN = "this token has only the 'read' scope; a change needs a token with 'write'"
WRITE_ONLY_TOKEN = "this token has only the 'write' scope; reading needs a token with 'read'"
CSRF_REFUSED = (
    f"a signed-in browser must send the session's CSRF token in {CSRF_HEADER} "
    "(from the sign-in response) with every change"
)


def credential_of(headers: Any, cookies: Any) -> str | None:
    """The credential text a request presents (a bearer token or the session
    cookie), for keying rate limits and idempotency records; None without one."""
    header = headers.get("authorization")
    if header:
        return f"bearer:{header.strip()}"
    cookie = cookies.get(SESSION_COOKIE)
    return f"session:{cookie}" if cookie else None


def make_authenticator(crm: Any) -> Callable[[Request], str | None]:
    """``app.state.authenticate``: the staff key a request proves, None when it
    proves none (401); a credential that may not do this raises 403. ``crm``
    is the process's CRM acting as the system."""

    def authenticate(request: Request) -> str | None:
        header = request.headers.get("authorization")
        if header:
            scheme, _, secret = header.strip().partition(" ")
            if scheme.lower() != "bearer":
                return None
            token = token_caller(crm, secret.strip())
            if token is None:
                return None
            if request.method in SAFE_METHODS and "read" not in token.scopes:
                raise HTTPException(403, WRITE_ONLY_TOKEN)
            if request.method not in SAFE_METHODS and "write" not in token.scopes:
                raise HTTPException(403, READ_ONLY_TOKEN)
            return token.staff_key
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        session = session_caller(crm, cookie)
        if session is None:
            return None
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent or not same(sent, csrf_token(cookie)):
                raise HTTPException(403, CSRF_REFUSED)
        return session.staff_key

    return authenticate
