"""``crm serve`` over a real socket (uvicorn on a free 127.0.0.1 port, two
worker processes), and the command line of tokens and passwords."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web extra (crmcore[web]) is not installed")

import httpx  # noqa: E402

from crmcore.auth.tokens import create_token  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_listening(port: int, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"crm serve exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError("crm serve did not start listening")


@pytest.mark.slow
def test_serve_answers_over_a_real_socket_with_two_workers(crm: Any) -> None:
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    cid = crm.customers.add("Over the wire", owner="zhang").id
    token = create_token(crm, "zhang", scopes="read,write", expires="never")["token"]
    port = _free_port()
    env = {**os.environ, "CRM_DATABASE_URL": crm.config.database}
    env.pop("CRM_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "crmcore", "serve", "--port", str(port), "--workers", "2", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_until_listening(port, proc)
        base = f"http://127.0.0.1:{port}/api/v1"
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            assert client.get("/me").json()["key"] == "zhang"
            for _ in range(4):  # whichever worker answers, it reads the same database
                assert client.get(f"/customers/{cid}").json()["name"] == "Over the wire"
            made = client.post(
                "/customers", json={"name": "Posted"}, headers={"Idempotency-Key": "k"}
            )
            again = client.post(
                "/customers", json={"name": "Posted"}, headers={"Idempotency-Key": "k"}
            )
            assert made.status_code == again.status_code == 201
            assert made.json()["id"] == again.json()["id"]
            assert httpx.get(f"{base}/me").status_code == 401
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert json.loads(out.decode())["workers"] == 2


def test_token_commands(crm: Any, crm_cli: Any) -> None:
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    crm.staff.add("boss", "Boss", roles=["admin"])
    made = crm_cli("token", "create", "--staff", "zhang", "--scope", "read", "--json")
    assert made.exit_code == 0, made
    secret = made.json()["token"]
    assert secret.startswith("crm_")
    listed = crm_cli("token", "list", "--json")
    assert secret not in listed.stdout and listed.json()[0]["staff"] == "zhang"
    refused = crm_cli("--as", "zhang", "token", "create", "--staff", "boss", "--json")
    assert (
        refused.exit_code == 1 and "error: zhang may not create a token for boss" in refused.stderr
    )
    token_id = made.json()["id"]
    revoked = crm_cli("token", "revoke", str(token_id), "--json")
    assert revoked.exit_code == 0 and revoked.json()["revoked_at"]
    bad = crm_cli("token", "create", "--staff", "zhang", "--expires", "forever")
    assert bad.exit_code == 1 and "--expires" in bad.stderr


def test_staff_password_is_admin_only(crm: Any, crm_cli: Any) -> None:
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    ok = crm_cli(
        "staff", "password", "zhang", "--password-stdin", "--json", input="a long password\n"
    )
    assert ok.exit_code == 0, ok
    refused = crm_cli(
        "--as",
        "zhang",
        "staff",
        "password",
        "zhang",
        "--password-stdin",
        input="another password\n",
    )
    assert refused.exit_code == 1 and "needs 'admin'" in refused.stderr


def test_serve_without_the_web_extra_says_what_to_install(
    crm: Any, crm_cli: Any, monkeypatch: Any
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # an import of it fails
    r = crm_cli("serve", "--port", "1")
    assert r.exit_code == 1 and "install crmcore[web]" in r.stderr


def test_serve_on_a_taken_port_is_one_error_line(crm: Any, crm_cli: Any) -> None:
    before = {k: os.environ.get(k) for k in ("CRM_DATABASE_URL", "CRM_CONFIG")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        r = crm_cli("serve", "--port", str(taken.getsockname()[1]))
    assert r.exit_code == 1 and r.stderr.strip().splitlines()[-1].startswith(
        "error: could not serve"
    )
    # serving leaves the caller's environment as it was
    assert {k: os.environ.get(k) for k in before} == before
