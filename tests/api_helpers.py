"""Shared set-up of the HTTP API tests: an application over the ``crm`` fixture's
database, staff of every kind, and a client signed in as any of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import pytest

pytest.importorskip("fastapi", reason="the web extra (crmcore[web]) is not installed")

from fastapi.testclient import TestClient  # noqa: E402

from crmcore.auth.tokens import create_token  # noqa: E402
from crmcore.web import create_app  # noqa: E402

STAFF = (
    ("boss", "Boss", ("admin",), None),
    ("zhang", "Zhang", ("rep",), "north"),
    ("li", "Li", ("rep",), "north"),
    ("wang", "Wang", ("supervisor",), "north"),
    ("zhao", "Zhao", ("rep",), "south"),
    ("audit", "Auditor", ("auditor",), None),
)


@attrs.define
class Api:
    """The application, its CRM (as the system) and clients acting as staff."""

    crm: Any
    app: Any
    clock: Any
    ids: dict[str, int] = attrs.field(factory=dict)

    def token(self, key: str, scopes: str = "read,write", expires: str = "90d") -> str:
        return str(create_token(self.crm, key, scopes=scopes, expires=expires)["token"])

    def client(self, key: str | None = None, scopes: str = "read,write") -> TestClient:
        """A client sending ``key``'s new token (None: no credentials)."""
        c = TestClient(self.app, raise_server_exceptions=False)
        if key is not None:
            c.headers["Authorization"] = f"Bearer {self.token(key, scopes)}"
        return c


def make_api(crm: Any, clock: Any, web: Mapping[str, Any] | None = None) -> Api:
    """Staff of :data:`STAFF` and two customers: ``zhang_c`` (Zhang's) and ``li_c`` (Li's)."""
    for key, name, roles, team in STAFF:
        crm.staff.add(key, name, roles=roles, team=team)
    config = attrs.evolve(crm.config, web=dict(web or {}))
    api = Api(crm=crm, app=create_app(config, clock=clock), clock=clock)
    api.ids["zhang_c"] = crm.customers.add("Zhang's customer", phone="13800000001", owner="zhang").id
    api.ids["li_c"] = crm.customers.add("Li's customer", phone="13800000002", owner="li").id
    return api
