"""``crm insurance ...``: every command takes ``--json``.

Longer than most modules: one short command per operation of the plugin."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from crm_insurance import opportunities as opp
from crm_insurance import orphans, policies, report, settings, vip, visits
from crm_insurance.scores import LABELS
from crmcore.cli import JSON_OPTION, Whole, emit, parse_at, pass_crm
from crmcore.parse import format_money, parse_money


def _d(value: dt.datetime | None) -> str:
    return f"{value:%Y-%m-%d}" if value else "-"


@click.group(name="insurance")
def insurance() -> None:
    """Life insurance policies, visits and agents.

    Life insurance: policies, verified visits, agent report, VIP, orphans, opportunities."""


# -- policies -------------------------------------------------------------------------
@insurance.group()
def policy() -> None:
    """Policies and their payouts.

    Policies: policyholder, insured, line, term, sums, dates, serving agent."""


def _policy_line(p: dict[str, Any]) -> str:
    return (
        f"{p['id']:>5}  {p['policy_no']:<14} customer {p['customer_id']:<6} "
        f"{p['product_line']:<16} {p['term']:<5} {p['status']:<10} "
        f"SAR {format_money(p['sum_at_risk_cents']):>14}  premium "
        f"{format_money(p['premium_cents']):>11}  agent {p['agent'] or '-'}"
        + ("" if p["agent_active"] in (None, True) else " (departed)")
    )


@policy.command("add")
@click.argument("customer")
@click.option("--no", "policy_no", required=True, help="Policy number (unique).")
@click.option("--line", "product_line", required=True, type=click.Choice(settings.PRODUCT_LINES))
@click.option("--term", required=True, type=click.Choice(settings.TERMS))
@click.option("--sum-at-risk", required=True, help="Sum at risk in yuan, e.g. 500000.")
@click.option("--premium", required=True, help="Annual premium in yuan, e.g. 12000.50.")
@click.option("--start", required=True, help="Start date (ISO).")
@click.option("--agent", metavar="STAFF", help="Serving agent (default: you).")
@click.option("--insured", metavar="CUSTOMER", help="The insured (default: the policyholder).")
@click.option("--product", default="", help="Product name.")
@click.option("--status", default="active", type=click.Choice(settings.POLICY_STATUSES))
@click.option("--paid-to", help="Premiums paid up to (next renewal premium due), ISO.")
@click.option("--payment-end", help="End of the payment period, ISO.")
@click.option("--maturity", help="Contract maturity / end of cover, ISO.")
@JSON_OPTION
@pass_crm
def policy_add(
    crm: Any,
    customer: str,
    policy_no: str,
    product_line: str,
    term: str,
    sum_at_risk: str,
    premium: str,
    start: str,
    agent: str | None,
    insured: str | None,
    product: str,
    status: str,
    paid_to: str | None,
    payment_end: str | None,
    maturity: str | None,
    as_json: bool,
) -> None:
    """Record a policy held by CUSTOMER."""
    p = policies.add_policy(
        crm,
        customer,
        policy_no,
        product_line=product_line,
        term=term,
        sum_at_risk_cents=parse_money(sum_at_risk, field="--sum-at-risk"),
        premium_cents=parse_money(premium, field="--premium"),
        start_at=parse_at(start, "--start"),
        agent=agent,
        insured=insured,
        product_name=product,
        status=status,
        paid_to=parse_at(paid_to, "--paid-to"),
        payment_end=parse_at(payment_end, "--payment-end"),
        maturity=parse_at(maturity, "--maturity"),
    )
    emit(p, as_json, _policy_line)


@policy.command("list")
@click.option("--customer", metavar="CUSTOMER", help="Held or insured by this customer.")
@click.option("--agent", metavar="STAFF")
@click.option("--status", type=click.Choice(settings.POLICY_STATUSES))
@JSON_OPTION
@pass_crm
def policy_list(
    crm: Any, customer: str | None, agent: str | None, status: str | None, as_json: bool
) -> None:
    """Policies you may see."""
    rows = policies.list_policies(crm, customer=customer, agent=agent, status=status)
    emit(rows, as_json, lambda rs: "\n".join(map(_policy_line, rs)) or "no policies")


@policy.command("status")
@click.argument("policy_ref", metavar="POLICY")
@click.argument("status", type=click.Choice(settings.POLICY_STATUSES))
@JSON_OPTION
@pass_crm
def policy_status(crm: Any, policy_ref: str, status: str, as_json: bool) -> None:
    """Set a policy's status."""
    emit(policies.set_status(crm, policy_ref, status), as_json, _policy_line)


@policy.command("payout")
@click.argument("policy_ref", metavar="POLICY")
@click.option("--kind", required=True, type=click.Choice(settings.PAYOUT_KINDS))
@click.option("--amount", required=True, help="Amount paid in yuan.")
@click.option("--at", help="When it was paid (ISO; default now).")
@click.option("--note", default="")
@JSON_OPTION
@pass_crm
def policy_payout(
    crm: Any, policy_ref: str, kind: str, amount: str, at: str | None, note: str, as_json: bool
) -> None:
    """Record a benefit or claim paid on POLICY.

    Record a benefit (给付) or claim (理赔) paid on POLICY."""
    r = policies.record_payout(
        crm,
        policy_ref,
        kind,
        parse_money(amount, field="--amount"),
        paid_at=parse_at(at, "--at"),
        note=note,
    )
    emit(
        r,
        as_json,
        lambda r: (
            f"{r['kind']} {format_money(r['amount_cents'])} paid on "
            f"{r['policy_no']} at {r['paid_at']:%Y-%m-%d}"
        ),
    )


@insurance.command("profile")
@click.argument("customer")
@JSON_OPTION
@pass_crm
def profile_cmd(crm: Any, customer: str, as_json: bool) -> None:
    """What to know before visiting CUSTOMER.

    What the agent should know before visiting CUSTOMER."""
    p = policies.profile(crm, customer)

    def human(p: dict[str, Any]) -> str:
        c = p["customer"]
        lines = [
            f"{c['name']} (id {c['id']}, {c['external_id'] or '-'})  grade {p['grade'] or '-'}"
            f"  agent {p['agent'] or '-'}",
            f"age {p['age'] if p['age'] is not None else '-'}  gender {p['gender'] or '-'}  "
            f"points {p['points'] if p['points'] is not None else '-'}  "
            f"phone {p['phone'] or '-'}",
            f"active policies held: {p['active_long_term_policies']} long-term, "
            f"{p['active_short_term_policies']} short-term; annual premium "
            f"{format_money(p['annual_premium_cents'])}",
        ]
        lines += [
            f"sum at risk {line:<16} {format_money(v):>14}"
            for line, v in p["sum_at_risk_cents_by_line"].items()
        ]
        return "\n".join(lines)

    emit(p, as_json, human)


# -- visits ------------------------------------------------------------------------------
@insurance.group()
def visit() -> None:
    """Agent visits, verified by SMS.

    Agent visits, verified by the customer's satisfaction SMS."""


def _visit_line(v: dict[str, Any]) -> str:
    score = f"  score {v['score']} ({LABELS[v['score']]})" if v["score"] else ""
    reply = (
        f"  reply {v['reply_at']:%Y-%m-%d %H:%M} from {v['reply_phone']}" if v["reply_at"] else ""
    )
    return (
        f"{v['id']:>5}  {v['visited_at']:%Y-%m-%d %H:%M}  customer {v['customer_id']:<6} "
        f"agent {v['agent'] or '-':<10} {v['status']:<9}{reply}{score}"
    )


@visit.command("add")
@click.argument("customer")
@click.option("--agent", metavar="STAFF", help="The visiting agent (default: you).")
@click.option("--at", help="When the visit took place (ISO; default now).")
@click.option("--note", default="", help="What was done (policy check-up, needs analysis, ...).")
@JSON_OPTION
@pass_crm
def visit_add(
    crm: Any, customer: str, agent: str | None, at: str | None, note: str, as_json: bool
) -> None:
    """Record a visit to CUSTOMER.

    Record a visit to CUSTOMER; it is verified when the customer texts back."""
    v = visits.record_visit(crm, customer, agent=agent, at=parse_at(at, "--at"), note=note)
    emit(
        v,
        as_json,
        lambda v: (
            _visit_line(v) + f"\nwaiting for the customer's SMS for "
            f"{settings.config(crm)['visit_window_hours']:g} h"
        ),
    )


@visit.command("list")
@click.option("--customer", metavar="CUSTOMER")
@click.option("--agent", metavar="STAFF")
@click.option("--status", type=click.Choice(["pending", "verified", "expired"]))
@JSON_OPTION
@pass_crm
def visit_list(
    crm: Any, customer: str | None, agent: str | None, status: str | None, as_json: bool
) -> None:
    """Visits you may see."""
    rows = visits.list_visits(crm, customer=customer, agent=agent, status=status)
    emit(rows, as_json, lambda rs: "\n".join(map(_visit_line, rs)) or "no visits")


@insurance.command("replies")
@click.option("--matched/--unmatched", default=None, help="Only verified / only unmatched replies.")
@JSON_OPTION
@pass_crm
def replies_cmd(crm: Any, matched: bool | None, as_json: bool) -> None:
    """Satisfaction SMS replies and their effect.

    Satisfaction SMS replies considered, with why each did or did not verify a visit."""
    rows = visits.list_replies(crm, matched=matched)
    emit(
        rows,
        as_json,
        lambda rs: (
            "\n".join(
                f"{r['id']:>5}  {r['received_at']:%Y-%m-%d %H:%M}  {r['from']:<16} "
                f"{'verified' if r['matched'] else r['reason']:<14} score {r['score'] or '-'}  "
                f"{r['text']!r}  {r['detail']}"
                for r in rs
            )
            or "no replies"
        ),
    )


# -- report -------------------------------------------------------------------------------
@insurance.command("report")
@click.option("--from", "start", help="Period start, ISO (default: first day of this month).")
@click.option("--to", "end", help="Period end, exclusive, ISO (default: first day of next month).")
@click.option("--agent", metavar="STAFF")
@JSON_OPTION
@pass_crm
def report_cmd(
    crm: Any, start: str | None, end: str | None, agent: str | None, as_json: bool
) -> None:
    """Per-agent visits, verification, satisfaction.

    Per agent: visits, verified (face-to-face) rate, satisfaction, VIPs below guarantee."""
    r = report.agent_report(
        crm, start=parse_at(start, "--from"), end=parse_at(end, "--to"), agent=agent
    )

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.0%}"

    def human(r: dict[str, Any]) -> str:
        lines = [
            f"agent report {_d(r['from'])} .. {_d(r['to'])} (exclusive)",
            f"{'agent':<10} {'visits':>6} {'verified':>8} {'rate':>5} {'avg':>5} "
            f"{'v.sat.':>6}  VIPs below guarantee",
        ]
        for a in r["agents"]:
            avg = "-" if a["average_score"] is None else f"{a['average_score']:.2f}"
            below = ", ".join(f"{v['name']} ({v['grade']})" for v in a["vip_below_guarantee"])
            lines.append(
                f"{a['agent'] or '-':<10} {a['visits']:>6} {a['verified']:>8} "
                f"{pct(a['verified_rate']):>5} {avg:>5} "
                f"{pct(a['very_satisfied_share']):>6}  {below or '-'}"
            )
        return "\n".join(lines)

    emit(r, as_json, human)


# -- VIP -------------------------------------------------------------------------------------
@insurance.group(name="vip")
def vip_group() -> None:
    """VIP grades and their guaranteed visits."""


@vip_group.command("list")
@click.option("--due", is_flag=True, help="Only those below their guaranteed visit frequency.")
@click.option("--agent", metavar="STAFF")
@click.option("--at", help="As of (ISO; default now).")
@JSON_OPTION
@pass_crm
def vip_list(crm: Any, due: bool, agent: str | None, at: str | None, as_json: bool) -> None:
    """VIP customers and their last verified visit.

    VIP customers with grade, guarantee and last verified visit."""
    rows = vip.vip_list(crm, at=parse_at(at, "--at"), due_only=due, agent=agent)
    emit(
        rows,
        as_json,
        lambda rs: (
            "\n".join(
                f"{r['customer_id']:>6}  {r['name']:<20} {r['grade']:<8} "
                f"{r['guaranteed_visits_per_year']}/year  last verified visit "
                f"{_d(r['last_verified_visit'])}  agent {r['agent'] or '-'}"
                + ("  DUE" if r["due"] else "")
                for r in rs
            )
            or "no VIP customers"
        ),
    )


# -- orphans -----------------------------------------------------------------------------------
@insurance.group(name="orphans")
def orphans_group() -> None:
    """Customers whose agents have all left.

    Customers all of whose policies' agents have departed."""


@orphans_group.command("list")
@JSON_OPTION
@pass_crm
def orphans_list(crm: Any, as_json: bool) -> None:
    """Orphan customers and their departed agents.

    Orphan customers, with their departed agents and since when."""
    rows = orphans.list_orphans(crm)
    emit(
        rows,
        as_json,
        lambda rs: (
            "\n".join(
                f"{r['customer_id']:>6}  {r['name']:<20} {r['policies']} policies  orphan since "
                f"{_d(r['orphan_since'])}  departed {', '.join(r['departed_agents']) or '-'}  "
                f"team {r['team'] or '-'}  held by {r['current_owner'] or '-'}"
                for r in rs
            )
            or "no orphan customers"
        ),
    )


@orphans_group.command("reassign")
@click.argument("customers", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Reassign every orphan customer.")
@click.option(
    "--to",
    metavar="STAFF",
    help="New agent (default: the active agent with the fewest customers in the team).",
)
@JSON_OPTION
@pass_crm
def orphans_reassign(
    crm: Any, customers: tuple[str, ...], all_: bool, to: str | None, as_json: bool
) -> None:
    """Give orphan customers a new agent.

    Give orphan CUSTOMERS (or --all) a new agent and a first-visit reminder."""
    rows = orphans.reassign(crm, list(customers), to=to, all_=all_)
    emit(
        rows,
        as_json,
        lambda rs: (
            "\n".join(
                f"{r['name']} -> {r['to']} ({r['policies']} policies; first visit due "
                f"{_d(r['first_visit_due'])})"
                for r in rs
            )
            or "no orphan customers"
        ),
    )


# -- opportunities -----------------------------------------------------------------------------
@insurance.command("opportunities")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(opp.KINDS),
    help="Only these kinds (repeatable).",
)
@click.option("--horizon-days", type=Whole(0, 36_500), help="Days ahead (and back, for payouts).")
@click.option("--agent", metavar="STAFF")
@JSON_OPTION
@pass_crm
def opportunities_cmd(
    crm: Any, kinds: tuple[str, ...], horizon_days: int | None, agent: str | None, as_json: bool
) -> None:
    """Renewals, maturities and payouts coming up.

    Renewals due, payment periods ending, maturities, benefits and claims paid."""
    rows = opp.opportunities(crm, kinds=list(kinds), horizon_days=horizon_days, agent=agent)
    emit(
        rows,
        as_json,
        lambda rs: (
            "\n".join(
                f"{r['date']:%Y-%m-%d}  {r['kind']:<12} {r['policy_no']:<14} {r['customer']:<20} "
                f"agent {r['agent'] or '-'}"
                + ("" if r["agent_active"] in (None, True) else " (departed)")
                for r in rs
            )
            or "no opportunities in the horizon"
        ),
    )
