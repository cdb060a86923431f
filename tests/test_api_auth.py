"""Sign-in: tokens (scopes, expiry, revocation), passwords with lockout,
browser sessions with CSRF, departed staff, every sign-in in the audit trail."""

from __future__ import annotations

from typing import Any

import pytest
from api_helpers import Api, make_api

from crmcore.auth.passwords import set_password
from crmcore.auth.tokens import create_token, list_tokens, revoke_token
from crmcore.errors import AccessDenied, NotFound, ValidationError
from crmcore.storage._driver import connection


@pytest.fixture
def api(crm: Any, crm_clock: Any) -> Api:
    return make_api(crm, crm_clock)


def test_no_credentials_is_401_problem(api: Api) -> None:
    r = api.client().get("/api/v1/me")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "sign in" in r.json()["detail"]


def test_a_token_acts_as_its_staff_member(api: Api) -> None:
    r = api.client("zhang").get("/api/v1/me")
    assert r.status_code == 200
    assert r.json()["key"] == "zhang" and r.json()["scope"] == "own"


def test_an_unknown_token_is_401(api: Api) -> None:
    c = api.client()
    c.headers["Authorization"] = "Bearer crm_not-a-real-token"
    assert c.get("/api/v1/me").status_code == 401


def test_a_read_token_may_not_write(api: Api) -> None:
    c = api.client("zhang", scopes="read")
    assert c.get("/api/v1/me").status_code == 200
    r = c.post("/api/v1/customers", json={"name": "New"})
    assert r.status_code == 403
    assert "'read' scope" in r.json()["detail"]


def test_a_revoked_token_stops_at_once(api: Api) -> None:
    made = create_token(api.crm, "zhang", scopes="read", expires="90d")
    c = api.client()
    c.headers["Authorization"] = f"Bearer {made['token']}"
    assert c.get("/api/v1/me").status_code == 200
    revoke_token(api.crm, made["id"])
    assert c.get("/api/v1/me").status_code == 401


def test_an_expired_token_stops(api: Api) -> None:
    c = api.client()
    c.headers["Authorization"] = f"Bearer {api.token('zhang', expires='1h')}"
    assert c.get("/api/v1/me").status_code == 200
    api.clock.advance(hours=1)
    assert c.get("/api/v1/me").status_code == 401


def test_a_departed_members_tokens_and_sessions_stop_at_once(api: Api) -> None:
    set_password(api.crm, "li", "correct horse battery")
    token_client = api.client("li")
    browser = api.client()
    assert (
        browser.post(
            "/api/v1/auth/login", json={"staff": "li", "password": "correct horse battery"}
        ).status_code
        == 200
    )
    assert token_client.get("/api/v1/me").status_code == 200
    assert browser.get("/api/v1/me").status_code == 200
    api.crm.staff.leave("li", handover_to="zhang")
    assert token_client.get("/api/v1/me").status_code == 401
    assert browser.get("/api/v1/me").status_code == 401


def test_a_rep_may_not_mint_a_token_for_an_admin(api: Api) -> None:
    rep = api.crm.as_("zhang")
    with pytest.raises(AccessDenied, match="may not create a token for boss"):
        create_token(rep, "boss", scopes="read,write", expires="90d")
    assert create_token(rep, "zhang", scopes="read", expires="1d")["staff"] == "zhang"


def test_tokens_are_listed_without_secrets_and_only_ones_own(api: Api) -> None:
    mine = create_token(api.crm.as_("zhang"), "zhang", scopes="read", expires="1d")
    create_token(api.crm, "li", scopes="read", expires="1d")
    listed = list_tokens(api.crm.as_("zhang"))
    assert [t.id for t in listed] == [mine["id"]]
    assert not hasattr(listed[0], "token")
    assert len(list_tokens(api.crm)) == 2
    with pytest.raises(NotFound):  # another member's token: not even told it exists
        revoke_token(api.crm.as_("zhang"), list_tokens(api.crm, staff_key="li")[0].id)


def test_bad_scopes_and_durations_are_refused(api: Api) -> None:
    with pytest.raises(ValidationError, match="--scope"):
        create_token(api.crm, "zhang", scopes="admin", expires="1d")
    with pytest.raises(ValidationError, match="--expires"):
        create_token(api.crm, "zhang", scopes="read", expires="soon")


def test_only_an_admin_sets_passwords(api: Api) -> None:
    with pytest.raises(AccessDenied, match="needs 'admin'"):
        set_password(api.crm.as_("zhang"), "zhang", "my own new password")
    with pytest.raises(ValidationError, match="password"):
        set_password(api.crm, "zhang", "short")


def _login(c: Any, staff: str, password: str) -> Any:
    return c.post("/api/v1/auth/login", json={"staff": staff, "password": password})


def test_login_sets_a_safe_cookie_and_csrf_guards_changes(api: Api) -> None:
    set_password(api.crm, "zhang", "correct horse battery")
    c = api.client()
    r = _login(c, "zhang", "correct horse battery")
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "Secure" not in cookie  # plain http in the test
    csrf = r.json()["csrf_token"]
    assert c.get("/api/v1/me").json()["key"] == "zhang"
    refused = c.post("/api/v1/customers", json={"name": "Forged"})
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
    wrong = c.post("/api/v1/customers", json={"name": "Forged"}, headers={"X-CSRF-Token": "x"})
    assert wrong.status_code == 403
    ok = c.post("/api/v1/customers", json={"name": "Mine"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201
    assert api.crm.as_("boss").customers.list()[-1].name == "Mine"
    assert [x.name for x in api.crm.customers.list()].count("Forged") == 0


def test_login_by_form_and_logout_ends_the_session_everywhere(api: Api) -> None:
    set_password(api.crm, "zhang", "correct horse battery")
    c = api.client()
    r = c.post("/api/v1/auth/login", data={"staff": "zhang", "password": "correct horse battery"})
    assert r.status_code == 200
    stolen = dict(c.cookies)
    csrf = r.json()["csrf_token"]
    assert c.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    other = api.client()
    other.cookies.update(stolen)  # the same cookie, e.g. another process or a copy
    assert other.get("/api/v1/me").status_code == 401


def test_sessions_expire(crm: Any, crm_clock: Any) -> None:
    web = make_api(crm, crm_clock, web={"session_hours": 1})
    set_password(web.crm, "zhang", "correct horse battery")
    c = web.client()
    assert _login(c, "zhang", "correct horse battery").status_code == 200
    assert c.get("/api/v1/me").status_code == 200
    crm_clock.advance(minutes=61)
    assert c.get("/api/v1/me").status_code == 401


def test_lockout_with_backoff_per_account(crm: Any, crm_clock: Any) -> None:
    web = make_api(crm, crm_clock, web={"lockout_failures": 3, "lockout_seconds": 60})
    set_password(web.crm, "zhang", "correct horse battery")
    c = web.client()
    for _ in range(3):
        assert _login(c, "zhang", "wrong password!").status_code == 401
    locked = _login(c, "zhang", "correct horse battery")
    assert locked.status_code == 429 and locked.headers["Retry-After"] == "60"
    crm_clock.advance(seconds=61)
    assert _login(c, "zhang", "wrong again!!").status_code == 401  # a fourth failure
    again = _login(c, "zhang", "correct horse battery")
    assert again.status_code == 429 and again.headers["Retry-After"] == "120"  # doubled
    crm_clock.advance(seconds=121)
    assert _login(c, "zhang", "correct horse battery").status_code == 200


def test_lockout_per_client_address(crm: Any, crm_clock: Any) -> None:
    web = make_api(crm, crm_clock, web={"lockout_address_failures": 4, "lockout_failures": 100})
    set_password(web.crm, "boss", "correct horse battery")
    c = web.client()
    for key in ("zhang", "li", "wang", "nobody"):
        assert _login(c, key, "guess guess guess").status_code == 401
    assert _login(c, "boss", "correct horse battery").status_code == 429


def test_every_sign_in_and_failure_is_audited(api: Api) -> None:
    set_password(api.crm, "zhang", "correct horse battery")
    c = api.client()
    _login(c, "zhang", "wrong password!")
    _login(c, "zhang", "correct horse battery")
    trail = api.crm.admin.audit_trail()
    actions = [
        (e["entity"], e["entity_id"], e["action"]) for e in trail if e["entity"] == "sign_in"
    ]
    assert ("sign_in", "zhang", "failed") in actions
    assert ("sign_in", "zhang", "signed_in") in actions
    assert not any("correct horse" in str(e) for e in trail)


def test_rehash_on_login_when_parameters_change(api: Api) -> None:
    from argon2 import PasswordHasher
    from sqlalchemy import select, update

    from crmcore.auth.tables import web_credentials

    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("correct horse battery")
    set_password(api.crm, "zhang", "correct horse battery")
    with api.crm.transaction() as db:
        connection(db).execute(update(web_credentials).values(password_hash=weak))
    assert _login(api.client(), "zhang", "correct horse battery").status_code == 200
    with api.crm.transaction() as db:
        stored = connection(db).execute(select(web_credentials.c.password_hash)).scalar_one()
    assert stored != weak and not PasswordHasher().check_needs_rehash(stored)


@pytest.mark.parametrize(
    "table",
    ["web_credentials", "web_tokens", "web_sessions", "web_login_failures", "web_idempotency"],
)
def test_a_restricted_principal_cannot_read_or_write_the_sign_in_tables(
    api: Api, table: str
) -> None:
    from sqlalchemy import delete, select

    from crmcore import schema

    target = getattr(schema, table)
    api.token("zhang")
    rep = api.crm.as_("zhang")
    with rep.transaction() as db:
        with pytest.raises(AccessDenied, match=f"may not read or write {table}"):
            db.execute(select(target))
        with pytest.raises(AccessDenied, match=f"may not read or write {table}"):
            db.execute(delete(target))


def test_an_unknown_web_setting_is_a_config_error(crm: Any, crm_clock: Any) -> None:
    from crmcore.errors import ConfigError

    with pytest.raises(ConfigError, match="web"):
        make_api(crm, crm_clock, web={"session_hour": 3})
