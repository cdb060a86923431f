"""Small dialect helpers for analytics SQL that runs on SQLite and PostgreSQL."""

from __future__ import annotations


def days_between(dialect: str, later: str, earlier: str) -> str:
    """SQL for the (fractional) number of days from ``earlier`` to ``later``."""
    if dialect == "sqlite":
        return f"(julianday({later}) - julianday({earlier}))"
    return f"(EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400.0)"


def require_unrestricted(crm: object, what: str) -> None:
    from crmcore.errors import AccessDenied

    principal = crm.db.principal  # type: ignore[attr-defined]
    if not principal.unrestricted:
        raise AccessDenied(f"{principal.key} may not run {what} over the whole customer base")
