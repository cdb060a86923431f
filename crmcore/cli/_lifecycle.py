"""crm lifecycle preview|report|exit-reason, crm playbook list|start, crm protect retention."""

from __future__ import annotations

from typing import Any

import click

from crmcore.cli._app import JSON_OPTION, cli, emit, parse_at, pass_crm
from crmcore.errors import ValidationError


@cli.group()
def lifecycle() -> None:
    """Lifecycle rules, loss rate and exit reasons."""


def _preview_text(data: dict[str, Any]) -> str:
    lines = [f"as of {data['at']}: {data['total']} would move"]
    for r in data["rules"]:
        lines.append(f"  {r['rule']:<24} {'/'.join(r['from'])} -> {r['to']}: {r['count']}")
    return "\n".join(lines)


@lifecycle.command("preview")
@click.option("--at", help="ISO date or date-time (default: now).")
@JSON_OPTION
@pass_crm
def lifecycle_preview(crm: Any, at: str | None, as_json: bool) -> None:
    """What core.lifecycle would move, per rule (changes nothing)."""
    emit(crm.lifecycle.preview(parse_at(at)), as_json, _preview_text)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _report_text(data: dict[str, Any]) -> str:
    lines: list[str] = []
    for p in data["periods"]:
        lines.append(
            f"{p['from'][:10]} .. {p['to'][:10]}: lost {p['lost']} of {p['active_at_start']} "
            f"active at the start ({_rate(p['loss_rate'])})"
        )
        for o in p["by_owner"]:
            lines.append(
                f"  owner {o['owner'] or '(none)'} (team {o['team'] or '-'}): "
                f"{o['lost']}/{o['active_at_start']} {_rate(o['loss_rate'])}"
            )
        for t in p["by_team"]:
            lines.append(
                f"  team {t['team'] or '(none)'}: {t['lost']}/{t['active_at_start']} "
                f"{_rate(t['loss_rate'])}"
            )
        for reason, n in p["exit_reasons"].items():
            lines.append(f"  exit reason {reason}: {n}")
    return "\n".join(lines)


@lifecycle.command("report")
@click.option("--from", "start", required=True, help="ISO date: the first day counted.")
@click.option("--to", "end", required=True, help="ISO date: the day after the last counted.")
@click.option("--by", type=click.Choice(["whole", "month"]), default="whole", show_default=True)
@JSON_OPTION
@pass_crm
def lifecycle_report(crm: Any, start: str, end: str, by: str, as_json: bool) -> None:
    """Loss rate per owner and team, with exit reasons.

    Counts the period from --from up to (not including) --to."""
    emit(
        crm.lifecycle.report(parse_at(start, "--from"), parse_at(end, "--to"), by=by),
        as_json,
        _report_text,
    )


@lifecycle.command("exit-reason")
@click.argument("customer")
@click.argument("reason")
@click.option("--note", default="", help="What the customer said, in their words.")
@JSON_OPTION
@pass_crm
def lifecycle_exit_reason(crm: Any, customer: str, reason: str, note: str, as_json: bool) -> None:
    """Record why a lost CUSTOMER left (exit survey)."""
    emit(
        crm.lifecycle.exit_reason(customer, reason, note=note),
        as_json,
        lambda r: f"customer {r['customer']}: exit reason {r['reason']!r} recorded",
    )


@cli.group()
def playbook() -> None:
    """Follow-up playbooks of reminders."""


@playbook.command("list")
@JSON_OPTION
@pass_crm
def playbook_list(crm: Any, as_json: bool) -> None:
    """Every playbook and its steps."""
    data = [
        {
            "name": b.name,
            "description": b.description,
            "steps": [{"day": s.day, "action": s.action, "text": s.text} for s in b.steps],
        }
        for b in crm.lifecycle.playbooks().values()
    ]
    emit(
        data,
        as_json,
        lambda bs: (
            "\n".join(
                f"{b['name']}: " + ", ".join(f"day {s['day']} {s['action']}" for s in b["steps"])
                for b in bs
            )
            or "no playbooks"
        ),
    )


@playbook.command("start")
@click.argument("name")
@click.argument("customer")
@JSON_OPTION
@pass_crm
def playbook_start(crm: Any, name: str, customer: str, as_json: bool) -> None:
    """Start playbook NAME for CUSTOMER now."""
    emit(
        crm.lifecycle.start_playbook(name, customer),
        as_json,
        lambda r: (
            f"playbook {r['playbook']} started for customer {r['customer']} "
            f"(run {r['run']}): {len(r['steps'])} reminders for {r['owner']}"
        ),
    )


@cli.group()
def protect() -> None:
    """Data protection: retention."""


@protect.command("retention")
@click.option("--at", help="ISO date or date-time (default: now).")
@click.option("--preview", "mode", flag_value="preview", help="Show who would be forgotten.")
@click.option("--apply", "mode", flag_value="apply", help="Forget them.")
@JSON_OPTION
@pass_crm
def protect_retention(crm: Any, at: str | None, mode: str | None, as_json: bool) -> None:
    """Forget customers inactive beyond the retention rules."""
    if mode is None:
        raise ValidationError("protect retention: give --preview or --apply")
    when = parse_at(at)
    if mode == "preview":
        data = crm.protect.retention_preview(when)
        verb = "would be forgotten"
    else:
        data = crm.protect.retention_apply(when)
        verb = "forgotten"
    key = "count" if mode == "preview" else "forgotten"
    emit(
        data,
        as_json,
        lambda d: "\n".join(
            [f"as of {d['at']}: {d['total']} {verb}"]
            + [f"  {r['rule']}: {r[key]}" for r in d["rules"]]
        ),
    )


@protect.command("new-key")
@click.argument("key_id")
@JSON_OPTION
def protect_new_key(key_id: str, as_json: bool) -> None:
    """Print a new key line KEY_ID:BASE64 for the key file.

    Put it first to make it current; keep the old lines to read older values."""
    from crmcore.protect.crypto import new_key_line

    line = new_key_line(key_id)
    emit({"key_id": key_id, "line": line}, as_json, lambda d: d["line"])


@protect.command("rotate-key")
@JSON_OPTION
@pass_crm
def protect_rotate_key(crm: Any, as_json: bool) -> None:
    """Re-encrypt values of older keys with the current key."""
    emit(
        crm.protect.rotate_key(),
        as_json,
        lambda d: f"{d['customers']} customers re-encrypted with key {d['key']}",
    )
