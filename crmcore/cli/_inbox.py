"""crm inbox: what a member of staff is told (reminders due, tickets overdue)."""

from __future__ import annotations

from typing import Any

import click

from crmcore.cli._app import JSON_OPTION, cli, emit, pass_crm
from crmcore.cli.params import Whole


def _lines(notes: list[dict[str, Any]]) -> str:
    from crmcore.cli.output import table

    return table(
        [
            (n["id"], "" if n["read_at"] else "new", n["created_at"].isoformat(sep=" "), n["title"])
            for n in notes
        ],
        ["id", "", "at", "notification"],
        empty="inbox is empty",
    )


@cli.group("inbox", invoke_without_command=True)
@click.option("--unread", is_flag=True, help="Only those not read yet.")
@click.option("--staff", "staff_key", metavar="STAFF", help="An admin: another member's inbox.")
@JSON_OPTION
@click.pass_context
def inbox(ctx: click.Context, unread: bool, staff_key: str | None, as_json: bool) -> None:
    """Your notifications: reminders due, tickets overdue."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(_inbox_list, unread=unread, staff_key=staff_key, as_json=as_json)


@pass_crm
def _inbox_list(crm: Any, unread: bool, staff_key: str | None, as_json: bool) -> None:
    from crmcore.ops.notify import inbox as read_inbox

    emit(read_inbox(crm, unread=unread, staff_key=staff_key), as_json, _lines)


@inbox.command("read")
@click.argument("notification_id", type=Whole(1))
@JSON_OPTION
@pass_crm
def inbox_read(crm: Any, notification_id: int, as_json: bool) -> None:
    """Mark a notification read."""
    from crmcore.ops.notify import mark_read

    emit(mark_read(crm, notification_id), as_json, lambda n: f"notification {n['id']} read")


@inbox.command("channel")
@click.argument("channel")
@click.option("--to", "to", metavar="ADDRESS", help="Your address on that channel.")
@click.option("--staff", "staff_key", metavar="STAFF", help="An admin: another member's.")
@JSON_OPTION
@pass_crm
def inbox_channel(
    crm: Any, channel: str, to: str | None, staff_key: str | None, as_json: bool
) -> None:
    """Where you are told.

    inbox (default), or e.g. email --to ADDRESS."""
    from crmcore.ops.notify import set_channel

    emit(
        set_channel(crm, channel, to=to, staff_key=staff_key),
        as_json,
        lambda d: (
            f"{d['staff']} is told through {d['channel']}"
            + (f" at {d['address']}" if d["address"] else "")
        ),
    )
