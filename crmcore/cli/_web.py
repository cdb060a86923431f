"""crm serve, crm staff password, crm token create/list/revoke: the HTTP API and
the credentials that sign in to it."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from crmcore.cli._app import JSON_OPTION, AppContext, cli, emit, pass_crm
from crmcore.cli._staff import staff
from crmcore.errors import CRMError, MissingExtra, ValidationError


def _require_web() -> None:
    from crmcore.web import WEB_EXTRA

    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise MissingExtra(WEB_EXTRA) from None


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Processes serving requests (uvicorn's multi-process mode).",
)
@JSON_OPTION
@pass_crm
def serve(crm: Any, host: str, port: int, workers: int, as_json: bool) -> None:
    """Serve the HTTP API (needs crmcore[web]).

    Every process builds the application from the same configuration; they
    share nothing but the database, so any number of them may serve it."""
    _require_web()
    import uvicorn

    from crmcore.auth.settings import web_settings

    web_settings(crm.config)  # a bad [web] section fails here, before any worker starts
    app = AppContext.of(click.get_current_context())
    # what each worker process builds its application from (set only while serving)
    environment = {"CRM_DATABASE_URL": crm.config.database}
    if app.config_path:
        environment["CRM_CONFIG"] = os.path.abspath(app.config_path)
    emit(
        {"url": f"http://{host}:{port}/api/v1", "workers": workers},
        as_json,
        lambda d: f"serving {d['url']} with {d['workers']} worker(s); Ctrl-C stops",
    )
    sys.stdout.flush()
    before = {k: os.environ.get(k) for k in environment}
    os.environ.update(environment)
    try:
        uvicorn.run(
            "crmcore.web.factory:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
        )
    except SystemExit as e:  # uvicorn exits when it cannot start (the port is taken ...)
        if e.code:
            raise CRMError(
                f"could not serve on {host}:{port} (see the message above); is the port in use?"
            ) from None
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@staff.command("password")
@click.argument("key")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@JSON_OPTION
@pass_crm
def staff_password(crm: Any, key: str, password_stdin: bool, as_json: bool) -> None:
    """Set the sign-in password of KEY (admin only).

    Prompts for it twice, or reads one line from stdin with --password-stdin."""
    from crmcore.auth.passwords import set_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    emit(set_password(crm, key, password), as_json, f"password set for {key}")


@cli.group()
def token() -> None:
    """Personal access tokens for the HTTP API.

    Create (shown once), list, revoke."""


@token.command("create")
@click.option("--staff", "staff_key", required=True, metavar="STAFF", help="Who the token acts as.")
@click.option(
    "--scope", "scopes", default="read", show_default=True, help="read, write or read,write."
)
@click.option("--expires", default="90d", show_default=True, help="90d, 12h, 30m or never.")
@click.option("--name", help="What the token is for.")
@JSON_OPTION
@pass_crm
def token_create(
    crm: Any, staff_key: str, scopes: str, expires: str, name: str | None, as_json: bool
) -> None:
    """Create a token (printed once: store it now).

    An admin creates tokens for anyone; others only for themselves."""
    from crmcore.auth.tokens import create_token

    made = create_token(crm, staff_key, scopes=scopes, expires=expires, name=name)
    emit(made, as_json, lambda d: d["token"])


@token.command("list")
@click.option("--staff", "staff_key", metavar="STAFF", help="Only this member's tokens.")
@JSON_OPTION
@pass_crm
def token_list(crm: Any, staff_key: str | None, as_json: bool) -> None:
    """List tokens (never their secrets)."""
    from crmcore.auth.tokens import list_tokens

    def human(rows: Any) -> str:
        lines = []
        for t in rows:
            state = "revoked" if t["revoked_at"] else f"expires {t['expires_at'] or 'never'}"
            lines.append(
                f"{t['id']:>5}  {t['staff']:<16} {','.join(t['scopes']):<11} {state}  {t['name']}"
            )
        return "\n".join(lines) or "no tokens"

    from crmcore.cli._app import to_plain

    emit(to_plain(list_tokens(crm, staff_key=staff_key)), as_json, human)


@token.command("revoke")
@click.argument("token_id", metavar="ID")
@JSON_OPTION
@pass_crm
def token_revoke(crm: Any, token_id: str, as_json: bool) -> None:
    """Revoke token ID; it stops working at once."""
    from crmcore.auth.tokens import revoke_token

    if not token_id.isdigit():
        raise ValidationError(f"token id {token_id!r}: expected a whole number")
    emit(revoke_token(crm, int(token_id)), as_json, lambda t: f"token {t.id} revoked")
