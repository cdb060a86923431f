"""The SMTP e-mail channel against a real SMTP server (aiosmtpd) the test starts."""

from __future__ import annotations

import email
import shutil
import socket
import ssl
import subprocess

import pytest

from crmcore.errors import ConfigError

aiosmtpd = pytest.importorskip("aiosmtpd", reason="aiosmtpd (the test extra) is not installed")
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """What the server received: one parsed e-mail per DATA."""

    def __init__(self):
        self.mails = []
        self.logins = []

    async def handle_DATA(self, server, smtp_state, envelope):
        self.mails.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content)))
        return "250 OK"

    def authenticate(self, server, smtp_state, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            self.logins.append(auth_data.login)
            ok = auth_data.login == b"crm" and auth_data.password == b"s3cret"
            return AuthResult(success=ok)
        return AuthResult(success=False)


@pytest.fixture
def smtp_server():
    servers = []

    def start(**kwargs):
        inbox = Inbox()
        port = free_port()
        controller = Controller(
            inbox,
            hostname="127.0.0.1",
            port=port,
            authenticator=inbox.authenticate,
            **kwargs,
        )
        controller.start()
        servers.append(controller)
        return inbox, port

    yield start
    for controller in servers:
        controller.stop()


@pytest.fixture
def certificate(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no test certificate for STARTTLS")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def email_crm(crm_factory, port, **settings):
    table = {
        "kind": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "from": "shop@example.com",
        "security": "none",
        "subject": "News",
        **settings,
    }
    return crm_factory(config={"channels": {"email": table}})


def test_each_message_is_delivered_once_with_a_message_id_from_its_key(crm_factory, smtp_server):
    inbox, port = smtp_server(auth_require_tls=False)
    crm = email_crm(crm_factory, port)
    a = crm.customers.add("Ann", email="ann@example.com")
    b = crm.customers.add("Bo", email="bo@example.com")
    ma = crm.messages.enqueue("email", body="hello Ann", customer=a, key="k-ann")
    crm.messages.enqueue("email", body="hello Bo", customer=b)
    assert crm.messages.send_outbox()["sent"] == 2
    assert crm.messages.send_outbox()["sent"] == 0  # nothing twice
    assert len(inbox.mails) == 2
    (rcpt, mail), _ = inbox.mails
    assert rcpt == ["ann@example.com"] and mail["Subject"] == "News"
    assert mail.get_payload(decode=True).decode().strip() == "hello Ann"
    from crmcore.channels.smtp import message_id

    assert mail["Message-ID"] == message_id("k-ann", "example.com")
    sent = next(m for m in crm.messages.outbox() if m.id == ma.id)
    assert sent.provider_id == mail["Message-ID"]


def test_login_with_the_password_from_the_environment(crm_factory, smtp_server, monkeypatch):
    inbox, port = smtp_server(auth_require_tls=False)
    monkeypatch.setenv("CRM_TEST_SMTP_PASSWORD", "s3cret")
    crm = email_crm(crm_factory, port, username="crm", password_env="CRM_TEST_SMTP_PASSWORD")
    c = crm.customers.add("Ann", email="ann@example.com")
    crm.messages.enqueue("email", body="hi", customer=c)
    assert crm.messages.send_outbox()["sent"] == 1
    assert inbox.logins == [b"crm"] and len(inbox.mails) == 1


def test_a_refused_login_is_a_failed_attempt_retried_later(crm_factory, smtp_server, monkeypatch):
    inbox, port = smtp_server(auth_require_tls=False)
    monkeypatch.setenv("CRM_TEST_SMTP_PASSWORD", "wrong")
    crm = email_crm(
        crm_factory, port, username="crm", password_env="CRM_TEST_SMTP_PASSWORD", timeout=2
    )
    c = crm.customers.add("Ann", email="ann@example.com")
    crm.messages.enqueue("email", body="hi", customer=c)
    assert crm.messages.send_outbox()["failed"] == 1
    queued = crm.messages.outbox(status="queued")[0]
    assert queued.attempts == 1 and queued.last_error.startswith("SMTP")
    assert inbox.logins and inbox.mails == []


def test_a_missing_password_variable_stops_the_send_before_anything(
    crm_factory, smtp_server, monkeypatch
):
    inbox, port = smtp_server(auth_require_tls=False)
    monkeypatch.delenv("CRM_TEST_SMTP_PASSWORD", raising=False)
    crm = email_crm(crm_factory, port, username="crm", password_env="CRM_TEST_SMTP_PASSWORD")
    c = crm.customers.add("Ann", email="ann@example.com")
    crm.messages.enqueue("email", body="hi", customer=c)
    with pytest.raises(ConfigError, match="CRM_TEST_SMTP_PASSWORD is not set"):
        crm.messages.send_outbox()
    assert crm.messages.outbox()[0].attempts == 0 and inbox.mails == []


def test_starttls_upgrades_the_connection_before_login(
    crm_factory, smtp_server, certificate, monkeypatch
):
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox, port = smtp_server(tls_context=context, require_starttls=True)
    monkeypatch.setenv("CRM_TEST_SMTP_PASSWORD", "s3cret")
    crm = email_crm(
        crm_factory,
        port,
        security="starttls",
        ca_file=str(cert),
        username="crm",
        password_env="CRM_TEST_SMTP_PASSWORD",
    )
    c = crm.customers.add("Ann", email="ann@example.com")
    crm.messages.enqueue("email", body="over TLS", customer=c)
    assert crm.messages.send_outbox()["sent"] == 1
    assert len(inbox.mails) == 1 and inbox.logins == [b"crm"]


def test_a_server_that_is_not_there_fails_within_the_timeout(crm_factory):
    crm = email_crm(crm_factory, free_port(), timeout=2)
    c = crm.customers.add("Ann", email="ann@example.com")
    crm.messages.enqueue("email", body="hi", customer=c)
    assert crm.messages.send_outbox()["failed"] == 1
    assert "ConnectionRefusedError" in crm.messages.outbox()[0].last_error


def test_a_bad_channel_table_is_a_one_line_config_error(crm_factory):
    with pytest.raises(ConfigError, match=r"channels\.email: missing key 'host'"):
        crm_factory(config={"channels": {"email": {"kind": "smtp", "from": "a@b.c"}}})
    with pytest.raises(ConfigError, match=r"channels\.email\.kind: expected one of"):
        crm_factory(config={"channels": {"email": {"kind": "pigeon"}}})
    with pytest.raises(ConfigError, match=r"channels\.email: unknown key 'password'"):
        crm_factory(
            config={
                "channels": {
                    "email": {
                        "kind": "smtp",
                        "host": "h",
                        "from": "a@b.c",
                        "password": "in the file",
                    }
                }
            }
        )


def test_ssl_from_the_first_byte(crm_factory, smtp_server, certificate):
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox, port = smtp_server(ssl_context=context, auth_require_tls=False)
    crm = email_crm(crm_factory, port, security="ssl", ca_file=str(cert))
    c = crm.customers.add("Ann", email="ann@example.com")
    crm.messages.enqueue("email", body="over SMTPS", customer=c)
    assert crm.messages.send_outbox()["sent"] == 1
    assert len(inbox.mails) == 1


def test_an_untrusted_certificate_is_refused(crm_factory, smtp_server, certificate):
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox, port = smtp_server(tls_context=context, require_starttls=True)
    crm = email_crm(crm_factory, port, security="starttls", timeout=3)  # the system's CAs only
    c = crm.customers.add("Ann", email="ann@example.com")
    crm.messages.enqueue("email", body="hi", customer=c)
    assert crm.messages.send_outbox()["failed"] == 1
    assert "SSLCertVerificationError" in crm.messages.outbox()[0].last_error
    assert inbox.mails == []
