"""Personal access tokens: ``Authorization: Bearer crm_...``.

A token is shown once, when it is created; the database keeps its SHA-256.
It carries scopes (``read``: GET and HEAD; ``write``: every other method), an
optional expiry, the time it was last used and, once revoked, when. It acts as
its member of staff, whose departure ends it at once (the staff row is read
with the token on every request).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import attrs
from sqlalchemy import insert, select, update

from crmcore.auth.secrets import (
    TOKEN_PREFIX,
    digest,
    new_secret,
    parse_duration,
    require_self_or_admin,
    staff_by_key,
)
from crmcore.auth.tables import web_tokens
from crmcore.errors import AccessDenied, NotFound, ValidationError
from crmcore.parse import clean_text
from crmcore.schema import staff
from crmcore.storage._driver import connection

SCOPES = ("read", "write")
# a token's last use is written at most this often (not a write per request)
LAST_USE_PRECISION = dt.timedelta(minutes=5)


@attrs.frozen(kw_only=True)
class TokenInfo:
    """A token as listed (never its secret)."""

    id: int
    staff: str
    name: str
    scopes: tuple[str, ...]
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


@attrs.frozen(kw_only=True)
class TokenCaller:
    """Who a presented token acts as."""

    token_id: int
    staff_key: str
    scopes: tuple[str, ...]


def parse_scopes(text: str | Iterable[str]) -> tuple[str, ...]:
    """``read,write`` as a tuple of known scopes; an unknown one is an error."""
    items = text.split(",") if isinstance(text, str) else list(text)
    scopes = tuple(dict.fromkeys(s.strip() for s in items if s.strip()))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise ValidationError(
            f"--scope {','.join(items) if not isinstance(text, str) else text!r}: "
            f"expected one or more of {', '.join(SCOPES)}"
        )
    return scopes


def create_token(
    crm: Any, staff_key: str, *, scopes: str | Iterable[str], expires: str, name: str | None = None
) -> dict[str, Any]:
    """Mint a token for ``staff_key`` as the acting principal of ``crm`` (an admin,
    or that member themself); return its description with the secret, which is
    never shown again."""
    chosen = parse_scopes(scopes)
    lifetime = parse_duration(expires, field="--expires")
    label = clean_text(name or "token", field="--name", max_len=100)
    secret = new_secret(TOKEN_PREFIX)
    with crm.transaction(op="token_create") as db:
        member = staff_by_key(connection(db), staff_key)
        require_self_or_admin(db.principal, member, "create a token")
        if not member.active:
            raise AccessDenied(f"{member.key} has departed: no new tokens")
        now = crm.now()
        expires_at = None if lifetime is None else now + lifetime
        inserted = connection(db).execute(
            insert(web_tokens).values(
                staff_id=member.id,
                name=label,
                token_hash=digest(secret),
                scopes=list(chosen),
                created_at=now,
                expires_at=expires_at,
            )
        ).inserted_primary_key
        assert inserted is not None  # a single-row insert names its key
        token_id = inserted[0]
        info = {"staff": member.key, "name": label, "scopes": list(chosen)}
        db.audit("web_token", str(token_id), "create", None, info, customer_id=None)
    return {
        "id": token_id,
        **info,
        "expires_at": expires_at.isoformat() if expires_at else None,
        "token": secret,
    }


def _info(row: Any) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        staff=row.key,
        name=row.name,
        scopes=tuple(row.scopes),
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


_LISTING = select(web_tokens, staff.c.key).join(staff, staff.c.id == web_tokens.c.staff_id)


def list_tokens(crm: Any, *, staff_key: str | None = None) -> list[TokenInfo]:
    """The tokens of ``staff_key`` (an admin: of anyone, all without a key; others:
    their own), newest first."""
    with crm.transaction(write=False, op="token_list") as db:
        principal = db.principal
        stmt = _LISTING.order_by(web_tokens.c.id.desc())
        if staff_key is not None:
            member = staff_by_key(connection(db), staff_key)
            require_self_or_admin(principal, member, "list tokens")
            stmt = stmt.where(web_tokens.c.staff_id == member.id)
        elif not principal.can("admin"):
            if principal.staff_id is None or not principal.active:
                raise AccessDenied(f"{principal.key} has no tokens to list")
            stmt = stmt.where(web_tokens.c.staff_id == principal.staff_id)
        return [_info(r) for r in connection(db).execute(stmt)]


def revoke_token(crm: Any, token_id: int) -> TokenInfo:
    """Revoke a token (an admin: anyone's; others: their own); it stops working at
    once. Revoking a revoked token changes nothing."""
    with crm.transaction(op="token_revoke") as db:
        row = connection(db).execute(_LISTING.where(web_tokens.c.id == token_id)).first()
        if row is None:
            raise NotFound(f"token {token_id} not found")
        member = staff_by_key(connection(db), row.key)
        try:
            require_self_or_admin(db.principal, member, "revoke a token")
        except AccessDenied:  # another member's token: not even its existence is told
            raise NotFound(f"token {token_id} not found") from None
        if row.revoked_at is None:
            now = crm.now()
            connection(db).execute(
                update(web_tokens).where(web_tokens.c.id == token_id).values(revoked_at=now)
            )
            db.audit(
                "web_token", str(token_id), "revoke", None, {"staff": row.key}, customer_id=None
            )
        row = connection(db).execute(_LISTING.where(web_tokens.c.id == token_id)).one()
        return _info(row)


_PRESENTED = select(web_tokens, staff.c.key, staff.c.active).join(
    staff, staff.c.id == web_tokens.c.staff_id
)


def token_caller(crm: Any, secret: str) -> TokenCaller | None:
    """Who the presented token ``secret`` acts as; None when it is unknown,
    revoked, expired or its member of staff has departed. Notes its last use."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    with crm.transaction(write=False, op="token_use") as db:
        row = connection(db).execute(_PRESENTED.where(web_tokens.c.token_hash == digest(secret))).first()
    now = crm.now()
    if row is None or row.revoked_at is not None or not row.active:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    if row.last_used_at is None or now - row.last_used_at >= LAST_USE_PRECISION:
        with crm.transaction(op="token_use") as db:
            connection(db).execute(
                update(web_tokens).where(web_tokens.c.id == row.id).values(last_used_at=now)
            )
    return TokenCaller(token_id=row.id, staff_key=row.key, scopes=tuple(row.scopes))
