"""crm interaction / ticket / reminder / jobs / outbox / sms / audit commands.

Longer than most modules: one short command per operation of several small groups; each
command is a few lines."""

from __future__ import annotations

from typing import Any

import click

from crmcore.cli._admin import CommandWithVerbs, audit_verify
from crmcore.cli._app import JSON_OPTION, cli, emit, parse_at, pass_crm
from crmcore.cli.params import NUMBER_ARGUMENTS, PositiveInt, Whole
from crmcore.present import show_email, show_phone


@cli.group()
def interaction() -> None:
    """Visits, calls, messages and notes.

    Visits, calls, SMS, e-mails, complaints, surveys, notes."""


@interaction.command("add")
@click.argument("ref")
@click.option("--kind", required=True, help="visit, call, sms, email, complaint, survey, note")
@click.option("--text", required=True)
@click.option("--at", help="ISO date-time (default: now).")
@click.option("--staff", metavar="STAFF")
@JSON_OPTION
@pass_crm
def interaction_add(
    crm: Any, ref: str, kind: str, text: str, at: str | None, staff: str | None, as_json: bool
) -> None:
    """Record an interaction with customer REF."""
    i = crm.records.add_interaction(ref, kind, text, at=parse_at(at), staff=staff)
    emit(i, as_json, lambda i: f"recorded {i.kind} {i.id} for customer {i.customer_id}")


@cli.group()
def ticket() -> None:
    """Tickets through a workflow.

    Complaints and service requests, each step with an owner and a due time."""


def _ticket_line(t: Any) -> str:
    due = t.due_at.isoformat(sep=" ", timespec="minutes") if t.due_at else "-"
    return (
        f"{t.id:>5}  {t.kind:<12} {t.state:<10} customer {t.customer_id:<6} due {due}  {t.subject}"
    )


@ticket.command("open")
@click.argument("ref")
@click.option("--subject", required=True)
@click.option("--kind", default="complaint", show_default=True)
@click.option("--workflow", default="default", show_default=True)
@click.option("--owner", metavar="STAFF")
@JSON_OPTION
@pass_crm
def ticket_open(
    crm: Any, ref: str, subject: str, kind: str, workflow: str, owner: str | None, as_json: bool
) -> None:
    """Open a ticket for customer REF."""
    emit(
        crm.tickets.open(ref, subject, kind=kind, workflow=workflow, owner=owner),
        as_json,
        _ticket_line,
    )


@ticket.command("move")
@click.argument("ticket_id")
@click.argument("state")
@click.option("--owner", metavar="STAFF")
@click.option("--note")
@JSON_OPTION
@pass_crm
def ticket_move(
    crm: Any, ticket_id: str, state: str, owner: str | None, note: str | None, as_json: bool
) -> None:
    """Move a ticket to STATE.

    Only the moves its workflow allows."""
    emit(crm.tickets.move(ticket_id, state, owner=owner, note=note), as_json, _ticket_line)


@ticket.command("show")
@click.argument("ticket_id")
@JSON_OPTION
@pass_crm
def ticket_show(crm: Any, ticket_id: str, as_json: bool) -> None:
    """A ticket and its history."""
    with crm.transaction(write=False):
        t = crm.tickets.get(ticket_id)
        data = {"ticket": t, "history": crm.tickets.history(ticket_id)}
    emit(
        data,
        as_json,
        lambda d: (
            _ticket_line(d["ticket"])
            + "".join(
                f"\n       {m.at:%Y-%m-%d %H:%M}  {m.from_state or '(opened)'} -> {m.to_state}"
                + (f"  {m.note}" if m.note else "")
                for m in d["history"]
            )
        ),
    )


@ticket.command("list")
@click.option("--state")
@click.option("--open", "open_only", is_flag=True)
@JSON_OPTION
@pass_crm
def ticket_list(crm: Any, state: str | None, open_only: bool, as_json: bool) -> None:
    """Tickets you may see."""
    emit(
        crm.tickets.list(state=state, open_only=open_only),
        as_json,
        lambda ts: "\n".join(map(_ticket_line, ts)) or "no tickets",
    )


@cli.group()
def reminder() -> None:
    """Follow-ups that fire on time."""


def _reminder_line(r: Any) -> str:
    about = f"  customer {r.customer_id}" if r.customer_id is not None else ""
    return f"{r.id:>5}  due {r.due_at:%Y-%m-%d %H:%M}  staff {r.staff_id}{about}  {r.text}"


@reminder.command("add")
@click.option("--staff", "staff_key", required=True, metavar="STAFF")
@click.option("--text", required=True)
@click.option("--due", required=True, help="ISO date-time.")
@click.option("--customer", metavar="REF")
@click.option("--every", help="Repeat: 30d, 2w or 1m; done, the next is created.")
@JSON_OPTION
@pass_crm
def reminder_add(
    crm: Any,
    staff_key: str,
    text: str,
    due: str,
    customer: str | None,
    every: str | None,
    as_json: bool,
) -> None:
    """Add a follow-up reminder (recurring with --every)."""
    emit(
        crm.tickets.add_reminder(
            staff_key, text, parse_at(due, "--due"), customer=customer, every=every
        ),
        as_json,
        _reminder_line,
    )


@reminder.command("due")
@click.option("--at", help="ISO date-time (default: now).")
@click.option("--staff", "staff_key", metavar="STAFF")
@JSON_OPTION
@pass_crm
def reminder_due(crm: Any, at: str | None, staff_key: str | None, as_json: bool) -> None:
    """Open reminders due by --at."""
    emit(
        crm.tickets.due_reminders(at=parse_at(at), staff=staff_key),
        as_json,
        lambda rs: "\n".join(map(_reminder_line, rs)) or "nothing due",
    )


@reminder.command("done", context_settings=NUMBER_ARGUMENTS)
@click.argument("reminder_id", type=PositiveInt("reminder id"))
@click.option("--outcome", help="What came of it (recorded on the customer's timeline).")
@JSON_OPTION
@pass_crm
def reminder_done(crm: Any, reminder_id: int, outcome: str | None, as_json: bool) -> None:
    """Mark a reminder done."""
    emit(
        crm.tickets.complete_reminder(reminder_id, outcome=outcome),
        as_json,
        lambda r: f"reminder {r.id} done",
    )


@cli.group()
def jobs() -> None:
    """Scheduled jobs of the enabled plugins."""


@jobs.command("list")
@JSON_OPTION
@pass_crm
def jobs_list(crm: Any, as_json: bool) -> None:
    """Every job, its schedule and last run.

    Plugin, schedule, zone, catch-up policy, next tick, last run."""
    from crmcore.cli.output import table
    from crmcore.ops.scheduler import job_table

    emit(
        job_table(crm),
        as_json,
        lambda d: table(
            [
                (
                    j["name"],
                    j["plugin"],
                    j["schedule"],
                    j["zone"],
                    j["catch_up"],
                    j["next_tick"].isoformat(timespec="minutes"),
                    j["last_status"],
                )
                for j in d
            ],
            ["job", "plugin", "schedule", "zone", "catch-up", "next tick", "last run"],
            empty="no jobs",
        ),
    )


@jobs.command("run")
@click.argument("names", nargs=-1)
@click.option("--at", help="Run as of this ISO date-time (default: now).")
@JSON_OPTION
@pass_crm
def jobs_run(crm: Any, names: tuple[str, ...], at: str | None, as_json: bool) -> None:
    """Run jobs (all, or NAMES) as of --at.

    One transaction each: a job that fails is rolled back alone, reported (its
    line says "failed" and why) and the others still run; the exit status is 1
    if any job failed."""
    results = crm.jobs.run(names or None, at=parse_at(at))
    emit(results, as_json, _job_lines)
    failed = [r["job"] for r in results if r["status"] == "failed"]
    if failed:
        if not as_json:
            click.echo(
                f"error: {len(failed)} of {len(results)} jobs failed: {', '.join(failed)}",
                err=True,
            )
        raise click.exceptions.Exit(1)


def _job_lines(results: list[dict[str, Any]]) -> str:
    from crmcore.cli.output import summary_text

    return (
        "\n".join(
            f"{r['job']}: {summary_text(r['summary'])}"
            if r["status"] == "ok"
            else f"{r['job']}: failed: {r['error']}"
            for r in results
        )
        or "no jobs"
    )


@cli.group()
def outbox() -> None:
    """Outbound messages, delivered after commit."""


@outbox.command("list")
@click.option(
    "--status", type=click.Choice(["queued", "sending", "sent", "dead", "cancelled"])
)
@JSON_OPTION
@pass_crm
def outbox_list(crm: Any, status: str | None, as_json: bool) -> None:
    """Messages in the outbox."""
    from crmcore.channels.rules import medium_of

    with crm.transaction(write=False):
        data = [
            {
                "id": m.id,
                "channel": m.channel,
                "to": show_phone(crm, m.to_address)
                if medium_of(crm.config, m.channel) == "sms"
                else show_email(crm, m.to_address),
                "body": m.body,
                "status": m.status,
                "purpose": m.purpose,
                "not_before": m.not_before.isoformat() if m.not_before else None,
                "delivery_status": m.delivery_status,
                "provider_error": m.provider_error,
                "attempts": m.attempts,
                "last_error": m.last_error,
                "customer_id": m.customer_id,
                "source": m.source,
                "key": m.idempotency_key,
            }
            for m in crm.messages.outbox(status=status)
        ]
    emit(
        data,
        as_json,
        lambda ms: (
            "\n".join(
                f"{m['id']:>5}  {m['channel']:<6} {m['status']:<7} {m['to'] or '-':<16} {m['body']}"
                for m in ms
            )
            or "outbox is empty"
        ),
    )


@outbox.command("send")
@click.option("--limit", type=Whole(1))
@JSON_OPTION
@pass_crm
def outbox_send(crm: Any, limit: int | None, as_json: bool) -> None:
    """Deliver queued messages.

    Through their channels (default: the log file)."""
    emit(
        crm.messages.send_outbox(limit=limit),
        as_json,
        lambda d: f"sent {d['sent']}, failed {d['failed']}, held {d['held']}, "
        f"cancelled {d['cancelled']}",
    )


@cli.group()
def sms() -> None:
    """Inbound SMS."""


@sms.command("receive")
@click.option("--from", "from_phone", required=True, metavar="PHONE")
@click.option("--text", required=True)
@click.option("--at", help="ISO date-time the message arrived (default: now).")
@JSON_OPTION
@pass_crm
def sms_receive(crm: Any, from_phone: str, text: str, at: str | None, as_json: bool) -> None:
    """Hand in an SMS the gateway received (admin).

    Routes it to the plugins (needs 'admin': replies are the gateway's to
    report, so a member of staff cannot forge one). The message is stored and audited as delivered by the acting member of staff
    (or the system)."""
    result = crm.messages.receive_sms(from_phone, text, at=parse_at(at))
    emit(result, as_json, _sms_line)


def _sms_line(r: dict[str, Any]) -> str:
    if r["routed"]:
        said = "; ".join(r["routed"])
    elif r["claimed"]:
        said = f"claimed by {r['claimed']} plugin(s)"
    else:
        said = "no plugin claimed it"
    return f"stored message {r['id']} (delivered by {r['delivered_by']}); {said}"


@cli.command(cls=CommandWithVerbs, verbs={"verify": audit_verify})
@click.argument("ref", required=False)
@click.option("--entity", help="Only rows about this entity kind (table name).")
@JSON_OPTION
@pass_crm
def audit(crm: Any, ref: str | None, entity: str | None, as_json: bool) -> None:
    """The audit trail of customer REF, or of everything.

    One line per change: time, who, command, table and key, action, and the
    changed columns as before -> after.
    """
    with crm.transaction(write=False):
        rows = crm.admin.audit_trail(ref, entity=entity)
        who = {s.id: s.key for s in crm.staff.list()} if rows else {}
    emit(rows, as_json, lambda rs: "\n".join(audit_line(r, who) for r in rs) or "no audit rows")


def _audit_value(value: Any) -> str:
    from crmcore.cli.output import cell, truncate

    if isinstance(value, str):
        return truncate(" ".join(value.split()), 60) or "''"
    if isinstance(value, dict | list):
        from crmcore.cli.output import to_json

        return truncate(to_json(value, indent=None), 60)
    return cell(value)


def audit_changes(before: Any, after: Any) -> str:
    """The changed columns of an audit row: ``stage: prospect -> new; ...``
    (an insert lists the new values, a delete the old ones)."""
    if not isinstance(before, dict) and not isinstance(after, dict):
        return ""
    old = before if isinstance(before, dict) else {}
    new = after if isinstance(after, dict) else {}
    if not old or not new:
        values = new or old
        return ", ".join(f"{k}={_audit_value(v)}" for k, v in values.items())
    parts = []
    for key in dict.fromkeys([*old, *new]):
        a, b = old.get(key), new.get(key)
        if a != b:
            parts.append(f"{key}: {_audit_value(a)} -> {_audit_value(b)}")
    return "; ".join(parts) or "no column changed"


def audit_line(row: Any, staff_keys: Any) -> str:
    """One audit row as a line: time, who, command, table/key, action, changes."""
    who = staff_keys.get(row["staff_id"], row["staff_id"]) if row["staff_id"] else "system"
    record = f"{row['entity']}/{row['entity_id']}" if row["entity_id"] else row["entity"]
    return (
        f"{row['at']:%Y-%m-%d %H:%M}  {who}  {row['command'] or '-'}  {record}  {row['action']}  "
        + audit_changes(row["before"], row["after"])
    ).rstrip()
