"""The ASGI application: built from a config, OpenAPI served, errors as problem+json."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web extra (crmcore[web]) is not installed")

from fastapi.testclient import TestClient  # noqa: E402

from crmcore import hookimpl  # noqa: E402
from crmcore.web import create_app  # noqa: E402


@pytest.fixture
def client(crm: Any, crm_clock: Any) -> TestClient:
    return TestClient(create_app(crm.config, clock=crm_clock))


def test_openapi_is_served_under_the_api_prefix(client: TestClient) -> None:
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    assert r.json()["openapi"].startswith("3.1")


def test_an_unknown_route_is_a_problem_not_html(client: TestClient) -> None:
    r = client.get("/api/v1/no-such-thing")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == 404


class _RoutesPlugin:
    """A plugin adding one router through ``crm_api_routers``."""

    @hookimpl
    def crm_api_routers(self) -> list[Any]:
        from fastapi import APIRouter

        router = APIRouter()

        @router.get("/ping")
        def ping() -> dict[str, str]:
            return {"pong": "yes"}

        return [router]


def test_a_plugin_router_is_mounted_under_its_name_and_documented(
    crm_factory: Any, crm_clock: Any
) -> None:
    plugin = _RoutesPlugin()
    crm = crm_factory(plugins=("probe",), extra_plugins={"probe": plugin})
    client = TestClient(create_app(crm.config, clock=crm_clock, extra_plugins={"probe": plugin}))
    assert client.get("/api/v1/probe/ping").json() == {"pong": "yes"}
    assert "/api/v1/probe/ping" in client.get("/api/v1/openapi.json").json()["paths"]
