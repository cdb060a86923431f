"""crm webhook add / list / remove / log / secret: outbound webhook subscriptions."""

from __future__ import annotations

from typing import Any

import click

from crmcore.cli._app import JSON_OPTION, cli, emit, pass_crm
from crmcore.cli.params import NUMBER_ARGUMENTS, Whole


@cli.group()
def webhook() -> None:
    """Outbound webhooks: who is told of which events.

    Messages are queued with the change and sent by crm outbox send, signed."""


def _line(s: dict[str, Any]) -> str:
    return f"{s['id']:>4}  {s['url']}  events {','.join(s['events'])}  secret ${s['secret_env']}"


@webhook.command("add")
@click.argument("url")
@click.option("--events", required=True, help="Comma-separated events, or '*' for all.")
@click.option(
    "--secret-from-env",
    "secret_env",
    metavar="VAR",
    help="Environment variable with the whsec_ signing secret (default: CRM_WEBHOOK_SECRET).",
)
@JSON_OPTION
@pass_crm
def webhook_add(crm: Any, url: str, events: str, secret_env: str | None, as_json: bool) -> None:
    """Subscribe URL to events.

    Subscribe URL to EVENTS; needs the configure permission."""
    from crmcore import webhooks

    sub = webhooks.subscribe(crm, url, events.split(","), secret_env=secret_env)
    emit(sub, as_json, lambda s: "added " + _line(s))


@webhook.command("list")
@JSON_OPTION
@pass_crm
def webhook_list(crm: Any, as_json: bool) -> None:
    """Webhook subscriptions."""
    from crmcore import webhooks

    emit(
        webhooks.subscriptions(crm),
        as_json,
        lambda subs: "\n".join(map(_line, subs)) or "no webhook subscriptions",
    )


@webhook.command("remove", context_settings=NUMBER_ARGUMENTS)
@click.argument("subscription_id", type=Whole(1))
@JSON_OPTION
@pass_crm
def webhook_remove(crm: Any, subscription_id: int, as_json: bool) -> None:
    """Remove a subscription.

    Remove subscription SUBSCRIPTION_ID; its queued messages are given up."""
    from crmcore import webhooks

    emit(
        webhooks.unsubscribe(crm, subscription_id),
        as_json,
        lambda s: f"removed {_line(s)}; {s['cancelled']} queued message(s) given up",
    )


@webhook.command("log")
@click.option("--event", help="Only this event, e.g. customer.created.")
@click.option("--status", type=click.Choice(["queued", "sending", "sent", "failed"]))
@JSON_OPTION
@pass_crm
def webhook_log(crm: Any, event: str | None, status: str | None, as_json: bool) -> None:
    """Webhook deliveries and their attempts.

    Webhook messages: event, endpoint, attempts, outcome, last error."""
    from crmcore import webhooks

    emit(
        webhooks.deliveries(crm, event=event, status=status),
        as_json,
        lambda rows: (
            "\n".join(
                f"{r['id']:>5}  {r['event']:<24} {r['status']:<7} x{r['attempts']}  {r['url']}"
                + (f"  ({r['last_error']})" if r["last_error"] else "")
                for r in rows
            )
            or "no webhook messages"
        ),
    )


@webhook.command("secret")
@JSON_OPTION
def webhook_secret(as_json: bool) -> None:
    """Print a new signing secret.

    A new whsec_ signing secret: put it in the sender's environment and give it to
    the receiver."""
    from crmcore.webhooks import new_secret

    emit({"secret": new_secret()}, as_json, lambda d: d["secret"])
