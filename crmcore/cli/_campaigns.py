"""crm campaign: a segment x a template x a channel x a schedule (see crmcore.campaigns)."""

from __future__ import annotations

from typing import Any

import click

from crmcore.cli._app import JSON_OPTION, cli, emit, parse_at, pass_crm
from crmcore.cli.params import Whole


@cli.group()
def campaign() -> None:
    """Messages to a saved segment on a schedule."""


def _run_line(d: dict[str, Any]) -> str:
    due = "due" if d["due"] else "not due"
    return (
        f"campaign {d['campaign']} occurrence {d['occurrence']} ({due}): "
        f"{d['eligible']} eligible, {d['holdout']} held out"
    )


@campaign.command("add")
@click.argument("name")
@click.option("--segment", required=True, help="The saved segment to send to.")
@click.option("--channel", type=click.Choice(["sms", "email"]), default="sms", show_default=True)
@click.option("--template", required=True, help="The text; placeholders {name}, {external_id}.")
@click.option("--once", "once_at", metavar="AT", help="Send once, from this moment.")
@click.option(
    "--holiday",
    help="Every year on spring_festival, dragon_boat, mid_autumn or national_day.",
)
@click.option("--date", "month_day", metavar="MM-DD", help="Every year on this day.")
@click.option(
    "--days-before", type=Whole(0), default=0, help="For yearly: due this many days early."
)
@click.option("--daily", is_flag=True, help="Every day (a birthday greeting's segment).")
@click.option("--holdout", help="A share never messaged, for the report (e.g. 10%).")
@JSON_OPTION
@pass_crm
def campaign_add(
    crm: Any,
    name: str,
    segment: str,
    channel: str,
    template: str,
    once_at: str | None,
    holiday: str | None,
    month_day: str | None,
    days_before: int,
    daily: bool,
    holdout: str | None,
    as_json: bool,
) -> None:
    """Save campaign NAME.

    With one schedule: --once, --holiday, --date or --daily."""
    from crmcore.campaigns import add_campaign, parse_holdout
    from crmcore.errors import ValidationError

    given = [x for x in (once_at, holiday, month_day, daily or None) if x]
    if len(given) != 1:
        raise ValidationError(
            "campaign add: give exactly one of --once, --holiday, --date, --daily"
        )
    schedule: dict[str, Any]
    if once_at is not None:
        schedule = {"kind": "once", "at": parse_at(once_at, "--once").isoformat()}
    elif daily:
        schedule = {"kind": "daily"}
    else:
        schedule = {"kind": "yearly", "days_before": days_before}
        schedule.update({"holiday": holiday} if holiday else {"date": month_day})
    saved = add_campaign(
        crm,
        name,
        segment=segment,
        channel=channel,
        template=template,
        schedule=schedule,
        holdout_percent=parse_holdout(holdout),
    )
    emit(saved, as_json, lambda c: f"campaign {c['name']} saved")


@campaign.command("list")
@JSON_OPTION
@pass_crm
def campaign_list(crm: Any, as_json: bool) -> None:
    """Every campaign."""
    from crmcore.campaigns import list_campaigns

    rows = list_campaigns(crm)
    emit(
        rows,
        as_json,
        lambda r: (
            "\n".join(f"{c['name']}  {c['segment']}  {c['channel']}  {c['schedule']}" for c in r)
            or "no campaigns"
        ),
    )


@campaign.command("show")
@click.argument("name")
@JSON_OPTION
@pass_crm
def campaign_show(crm: Any, name: str, as_json: bool) -> None:
    """One campaign and its runs so far."""
    from crmcore.campaigns import show_campaign

    def human(c: dict[str, Any]) -> str:
        lines = [f"{c['name']}  {c['segment']}  {c['channel']}  {c['schedule']}", c["template"]]
        lines += [
            f"  {o['occurrence']}: {o['selected']} selected, {o['messaged']} messaged"
            for o in c["occurrences"]
        ]
        return "\n".join(lines)

    emit(show_campaign(crm, name), as_json, human)


@campaign.command("dry-run")
@click.argument("name")
@click.option("--at", help="As of this moment (default: now).")
@JSON_OPTION
@pass_crm
def campaign_dry_run(crm: Any, name: str, at: str | None, as_json: bool) -> None:
    """Count and sample who would receive it."""
    from crmcore.campaigns import dry_run

    def human(d: dict[str, Any]) -> str:
        lines = [_run_line(d) + f", {d['would_send']} would be messaged"]
        lines += [f"  {s['customer_id']}: {s['body']}" for s in d["sample"]]
        return "\n".join(lines)

    emit(dry_run(crm, name, at=parse_at(at)), as_json, human)


@campaign.command("send")
@click.argument("name")
@click.option("--at", help="As of this moment (default: now).")
@JSON_OPTION
@pass_crm
def campaign_send(crm: Any, name: str, at: str | None, as_json: bool) -> None:
    """Queue the due run's messages.

    Delivered by `crm outbox send`; a re-run sends nothing twice."""
    from crmcore.campaigns import send

    emit(
        send(crm, name, at=parse_at(at)), as_json, lambda d: _run_line(d) + f", {d['sent']} queued"
    )


@campaign.command("report")
@click.argument("name")
@click.option("--occurrence", help="Which run (default: the latest).")
@click.option("--days", type=Whole(1), default=30, show_default=True, help="Days after the run.")
@JSON_OPTION
@pass_crm
def campaign_report_cmd(
    crm: Any, name: str, occurrence: str | None, days: int, as_json: bool
) -> None:
    """Reached vs held out: purchases, uplift."""
    from crmcore.campaigns.report import campaign_report

    def human(d: dict[str, Any]) -> str:
        r, h, u = d["reached"], d["holdout"], d["uplift_spend_cents"]
        ci = u["ci95"]
        span = f" (95% CI {ci[0] / 100:.2f} to {ci[1] / 100:.2f})" if ci else ""
        diff = "n/a" if u["difference"] is None else f"{u['difference'] / 100:.2f}"
        return (
            f"{d['campaign']} {d['occurrence']}, {d['days']} days after:\n"
            f"  reached: {r['customers']} customers, {r['purchases']} purchases, "
            f"spend {r['spend_cents'] / 100:.2f}\n"
            f"  held out: {h['customers']} customers, {h['purchases']} purchases, "
            f"spend {h['spend_cents'] / 100:.2f}\n"
            f"  uplift in spend per customer: {diff}{span}"
        )

    emit(campaign_report(crm, name, occurrence=occurrence, days=days), as_json, human)
