"""The core's resources under ``/api/v1``, one router per area."""

from __future__ import annotations

from typing import Any


def core_routers() -> list[Any]:
    """Every core router, in the order they appear in the OpenAPI description."""
    from crmcore.web.api import admin, auth, customers, records, tickets

    return [auth.router, customers.router, records.router, tickets.router, admin.router]
