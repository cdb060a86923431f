"""``crm real-estate ...``: every command prints text, or JSON with ``--json``.

Longer than most modules: one short command per operation of the plugin."""

from __future__ import annotations

from typing import Any

import click

from crmcore.cli import JSON_OPTION, Whole, emit, parse_at, pass_crm
from crmcore.cli.params import NUMBER_ARGUMENTS, PositiveInt

from . import places, reports
from . import requests as req


def _d(value: Any) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M")


def _day(value: Any) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d")


def _lines(rows: list[Any], fmt: Any, empty: str) -> str:
    return "\n".join(fmt(r) for r in rows) or empty


@click.group("real-estate")
def group() -> None:
    """Projects, units, owners and after-sales.

    Real estate: projects, units, owners, the after-sales centre, incidents, reports."""


# -- projects, buildings, units ---------------------------------------------------------------
@group.group()
def project() -> None:
    """Development projects (小区)."""


@project.command("add")
@click.argument("code")
@click.option("--name", required=True)
@click.option("--city")
@click.option(
    "--design-life-years", type=Whole(1, 1000), help="Structure warranty (default: config)."
)
@JSON_OPTION
@pass_crm
def project_add(
    crm: Any, code: str, name: str, city: str | None, design_life_years: int | None, as_json: bool
) -> None:
    """Add project CODE."""
    p = places.add_project(crm, code, name, city=city, design_life_years=design_life_years)
    emit(p, as_json, lambda p: f"project {p['code']} added: {p['name']}")


@project.command("list")
@JSON_OPTION
@pass_crm
def project_list(crm: Any, as_json: bool) -> None:
    """Projects with building and unit counts.

    Projects with their numbers of buildings and units."""
    emit(
        places.list_projects(crm),
        as_json,
        lambda rows: _lines(
            rows,
            lambda p: (
                f"{p['code']:<10} {p['name']:<30} {p['buildings']:>3} buildings "
                f"{p['units']:>5} units"
            ),
            "no projects",
        ),
    )


@group.group()
def building() -> None:
    """Buildings of a project."""


@building.command("add")
@click.argument("project_ref", metavar="PROJECT")
@click.argument("code")
@click.option("--name")
@click.option("--handover", help="Handover of the common parts (ISO date).")
@JSON_OPTION
@pass_crm
def building_add(
    crm: Any, project_ref: str, code: str, name: str | None, handover: str | None, as_json: bool
) -> None:
    """Add building CODE to PROJECT."""
    b = places.add_building(
        crm, project_ref, code, name=name, handover_at=parse_at(handover, "--handover")
    )
    emit(b, as_json, lambda b: f"building {b['path']} added")


@building.command("list")
@click.option("--project", "project_ref")
@JSON_OPTION
@pass_crm
def building_list(crm: Any, project_ref: str | None, as_json: bool) -> None:
    """Buildings (of one project)."""
    emit(
        places.list_buildings(crm, project_ref),
        as_json,
        lambda rows: _lines(
            rows,
            lambda b: f"{b['path']:<16} {b['units']:>5} units  handover {_day(b['handover_at'])}",
            "no buildings",
        ),
    )


@group.group()
def unit() -> None:
    """Units (flats, shops) and their handover."""


@unit.command("add")
@click.argument("building_ref", metavar="BUILDING")
@click.argument("code")
@click.option("--handover", help="Handover date (ISO); leave out until handed over.")
@JSON_OPTION
@pass_crm
def unit_add(crm: Any, building_ref: str, code: str, handover: str | None, as_json: bool) -> None:
    """Add unit CODE to BUILDING (PROJECT/BUILDING)."""
    u = places.add_unit(crm, building_ref, code, handover_at=parse_at(handover, "--handover"))
    emit(u, as_json, lambda u: f"unit {u['path']} added (handover {_day(u['handover_at'])})")


@unit.command("list")
@click.option("--building", "building_ref")
@JSON_OPTION
@pass_crm
def unit_list(crm: Any, building_ref: str | None, as_json: bool) -> None:
    """Units (of one building)."""
    emit(
        places.list_units(crm, building_ref),
        as_json,
        lambda rows: _lines(
            rows, lambda u: f"{u['path']:<20} handover {_day(u['handover_at'])}", "no units"
        ),
    )


@unit.command("handover")
@click.argument("unit_ref", metavar="UNIT")
@click.option("--at", "at", required=True, help="Handover date (ISO).")
@JSON_OPTION
@pass_crm
def unit_handover(crm: Any, unit_ref: str, at: str, as_json: bool) -> None:
    """Record UNIT's handover date.

    Record UNIT's handover date (warranties count from it)."""
    u = places.set_handover(crm, unit_ref, parse_at(at))
    emit(u, as_json, lambda u: f"unit {u['path']} handed over on {_day(u['handover_at'])}")


# -- owners and buyers --------------------------------------------------------------------------
@group.group()
def owner() -> None:
    """Owners, co-owners and tenants of units."""


@owner.command("add")
@click.argument("unit_ref", metavar="UNIT")
@click.argument("customer")
@click.option("--role", type=click.Choice(places.ROLES), default="owner", show_default=True)
@click.option("--since", help="ISO date (default: now).")
@click.option("--sales", metavar="STAFF", help="Sales staff following the buyer up.")
@JSON_OPTION
@pass_crm
def owner_add(
    crm: Any,
    unit_ref: str,
    customer: str,
    role: str,
    since: str | None,
    sales: str | None,
    as_json: bool,
) -> None:
    """Link CUSTOMER to UNIT."""
    link = places.add_owner(
        crm, unit_ref, customer, role=role, since=parse_at(since, "--since"), sales=sales
    )
    emit(
        link,
        as_json,
        lambda x: f"link {x['id']}: customer {x['customer_id']} is {x['role']} of {x['unit']}",
    )


@owner.command("end", context_settings=NUMBER_ARGUMENTS)
@click.argument("link_id", type=PositiveInt("link id"))
@click.option("--at", help="ISO date (default: now).")
@JSON_OPTION
@pass_crm
def owner_end(crm: Any, link_id: int, at: str | None, as_json: bool) -> None:
    """End a unit link (sold, moved out)."""
    x = places.end_owner(crm, link_id, at=parse_at(at))
    emit(x, as_json, lambda x: f"link {x['id']} to {x['unit']} ended {_day(x['until'])}")


@owner.command("list")
@click.option("--unit", "unit_ref")
@click.option("--customer")
@click.option("--all", "show_all", is_flag=True, help="Include ended links.")
@JSON_OPTION
@pass_crm
def owner_list(
    crm: Any, unit_ref: str | None, customer: str | None, show_all: bool, as_json: bool
) -> None:
    """Who is linked to which unit."""
    rows = places.list_owners(crm, unit=unit_ref, customer=customer, current=not show_all)
    emit(
        rows,
        as_json,
        lambda rows: _lines(
            rows,
            lambda o: (
                f"{o['id']:>5} {o['unit']:<18} {o['role']:<9} {o['customer_id']:>6} "
                f"{o['name']:<20} {o['phone'] or '-'}"
            ),
            "nobody",
        ),
    )


@group.group()
def buyer() -> None:
    """Buyers followed up before handover.

    Buyers followed up by sales staff before handover."""


@buyer.command("assign")
@click.argument("customer")
@click.option("--staff", "staff_ref", required=True, metavar="STAFF")
@JSON_OPTION
@pass_crm
def buyer_assign(crm: Any, customer: str, staff_ref: str, as_json: bool) -> None:
    """Make STAFF the sales contact of buyer CUSTOMER."""
    x = places.assign_sales(crm, customer, staff_ref)
    emit(x, as_json, lambda x: f"customer {x['customer_id']} followed up by {x['staff']}")


@buyer.command("list")
@click.option("--at", help="ISO date-time (default: now).")
@JSON_OPTION
@pass_crm
def buyer_list(crm: Any, at: str | None, as_json: bool) -> None:
    """Buyers not handed over yet.

    Owners of units not handed over yet, with their sales staff."""
    emit(
        places.list_buyers(crm, at=parse_at(at)),
        as_json,
        lambda rows: _lines(
            rows,
            lambda b: (
                f"{b['unit']:<18} {b['name']:<20} handover {_day(b['handover_at'])} "
                f"sales {b['sales'] or '-'}"
            ),
            "no buyers before handover",
        ),
    )


# -- teams --------------------------------------------------------------------------------------
@group.group()
def team() -> None:
    """Maintenance teams and what they cover."""


@team.command("add")
@click.argument("code")
@click.option("--name", required=True)
@click.option("--leader", required=True, metavar="STAFF")
@JSON_OPTION
@pass_crm
def team_add(crm: Any, code: str, name: str, leader: str, as_json: bool) -> None:
    """Add maintenance team CODE led by STAFF."""
    t = places.add_team(crm, code, name, leader=leader)
    emit(t, as_json, lambda t: f"team {t['code']} added, led by {t['leader']}")


@team.command("cover")
@click.argument("team_ref", metavar="TEAM")
@click.option("--category", required=True)
@click.option("--building", "building_ref", help="PROJECT/BUILDING (default: every building).")
@JSON_OPTION
@pass_crm
def team_cover(
    crm: Any, team_ref: str, category: str, building_ref: str | None, as_json: bool
) -> None:
    """Assign TEAM a category of requests.

    TEAM takes requests of --category (in --building)."""
    x = places.cover(crm, team_ref, category, building=building_ref)
    emit(
        x,
        as_json,
        lambda x: f"team {x['team']} covers {x['category']} in {x['building'] or 'every building'}",
    )


@team.command("list")
@JSON_OPTION
@pass_crm
def team_list(crm: Any, as_json: bool) -> None:
    """Teams, leaders, covers."""
    emit(
        places.list_teams(crm),
        as_json,
        lambda rows: _lines(
            rows,
            lambda t: (
                f"{t['code']:<12} {t['name']:<24} leader {t['leader']:<10} covers "
                + ", ".join(f"{c['category']}@{c['building'] or '*'}" for c in t["covers"])
            ),
            "no teams",
        ),
    )


# -- warranty -------------------------------------------------------------------------------------
@group.group()
def warranty() -> None:
    """Warranty periods from handover."""


@warranty.command("check")
@click.option("--category", required=True)
@click.option("--unit", "unit_ref")
@click.option("--building", "building_ref", help="Common parts of PROJECT/BUILDING.")
@click.option("--at", help="ISO date-time (default: now).")
@JSON_OPTION
@pass_crm
def warranty_check(
    crm: Any,
    category: str,
    unit_ref: str | None,
    building_ref: str | None,
    at: str | None,
    as_json: bool,
) -> None:
    """Would a defect of --category be in warranty?"""
    x = req.check_warranty(crm, category, unit=unit_ref, building=building_ref, at=parse_at(at))
    emit(x, as_json, lambda x: f"{x['warranty']}: {x['reason']}")


# -- requests ---------------------------------------------------------------------------------
@group.group()
def request() -> None:
    """Repair requests and complaints.

    Repair requests and complaints at the after-sales centre."""


def _request_line(r: dict[str, Any]) -> str:
    return (
        f"{r['id']:>5} {r['state']:<11} {r['category']:<15} {r['place']:<24} "
        f"team {r['team'] or '-':<10} due {_d(r['deadline_at'])} warranty {r['warranty']}"
        + (f" reopened x{r['reopen_count']}" if r["reopen_count"] else "")
    )


def _request_text(r: dict[str, Any]) -> str:
    lines = [
        _request_line(r),
        f"      customer {r['customer_id']} {r['customer']} via "
        f"{r['channel']}, {r['urgency']}: {r['description']}",
        f"      warranty: {r['warranty_reason']}",
    ]
    if r.get("incident_id"):
        lines.append(f"      part of incident {r['incident_id']}")
    for m in r.get("history", []):
        lines.append(
            f"      {_d(m['at'])} {m['from'] or '-'} -> {m['to']}"
            + (f": {m['note']}" if m["note"] else "")
        )
    for v in r.get("revisits", []):
        lines.append(
            f"      revisit {_d(v['at'])}: {v['satisfaction']}/5, "
            f"{'fixed' if v['fixed'] else 'not fixed'}"
        )
    return "\n".join(lines)


@request.command("open")
@click.argument("customer")
@click.option("--category", required=True)
@click.option("--channel", required=True, help="phone, visit, fax, online (config).")
@click.option("--text", required=True, help="What is wrong, where.")
@click.option("--unit", "unit_ref", help="PROJECT/BUILDING/UNIT")
@click.option("--building", "building_ref", help="PROJECT/BUILDING, for the common parts.")
@click.option("--urgency", help="emergency, urgent, normal (config; default normal).")
@click.option("--kind", type=click.Choice(req.KINDS), default="repair", show_default=True)
@click.option("--at", help="When it was reported (ISO; default now).")
@JSON_OPTION
@pass_crm
def request_open(
    crm: Any,
    customer: str,
    category: str,
    channel: str,
    text: str,
    unit_ref: str | None,
    building_ref: str | None,
    urgency: str | None,
    kind: str,
    at: str | None,
    as_json: bool,
) -> None:
    """File a repair request for CUSTOMER.

    File a request for CUSTOMER; it lands on their timeline as a ticket."""
    r = req.open_request(
        crm,
        customer,
        category=category,
        channel=channel,
        text=text,
        unit=unit_ref,
        building=building_ref,
        urgency=urgency,
        kind=kind,
        at=parse_at(at),
    )
    emit(r, as_json, _request_text)


@request.command("list")
@click.option("--state", type=click.Choice(req.STATES))
@click.option("--open", "open_only", is_flag=True, help="Not closed.")
@click.option("--team", "team_ref")
@click.option("--overdue", is_flag=True, help="Work outstanding past the deadline.")
@click.option("--customer")
@JSON_OPTION
@pass_crm
def request_list(
    crm: Any,
    state: str | None,
    open_only: bool,
    team_ref: str | None,
    overdue: bool,
    customer: str | None,
    as_json: bool,
) -> None:
    """Requests (those of customers you may see)."""
    rows = req.list_requests(
        crm, state=state, open_only=open_only, team=team_ref, overdue=overdue, customer=customer
    )
    emit(rows, as_json, lambda rows: _lines(rows, _request_line, "no requests"))


@request.command("show", context_settings=NUMBER_ARGUMENTS)
@click.argument("request_id", type=PositiveInt("request id"))
@JSON_OPTION
@pass_crm
def request_show(crm: Any, request_id: int, as_json: bool) -> None:
    """A request with its history and revisits."""
    emit(req.get_request(crm, request_id), as_json, _request_text)


@request.command("dispatch", context_settings=NUMBER_ARGUMENTS)
@click.argument("request_id", type=PositiveInt("request id"))
@click.option("--team", "team_ref", help="Default: the team covering its category and building.")
@JSON_OPTION
@pass_crm
def request_dispatch(crm: Any, request_id: int, team_ref: str | None, as_json: bool) -> None:
    """Send a request to a maintenance team.

    Dispatch a received request to a maintenance team."""
    emit(req.dispatch(crm, request_id, team_ref), as_json, _request_line)


@request.command("start", context_settings=NUMBER_ARGUMENTS)
@click.argument("request_id", type=PositiveInt("request id"))
@click.option("--note")
@JSON_OPTION
@pass_crm
def request_start(crm: Any, request_id: int, note: str | None, as_json: bool) -> None:
    """The team starts the work."""
    emit(req.start(crm, request_id, note), as_json, _request_line)


@request.command("complete", context_settings=NUMBER_ARGUMENTS)
@click.argument("request_id", type=PositiveInt("request id"))
@click.option("--note")
@JSON_OPTION
@pass_crm
def request_complete(crm: Any, request_id: int, note: str | None, as_json: bool) -> None:
    """Report a request's work done.

    The team reports the work done; the owner revisit is scheduled."""
    emit(req.complete(crm, request_id, note), as_json, _request_line)


@request.command("revisit", context_settings=NUMBER_ARGUMENTS)
@click.argument("request_id", type=PositiveInt("request id"))
@click.option("--satisfaction", type=Whole(), required=True, help="1 (very poor) to 5 (very good).")
@click.option(
    "--fixed/--not-fixed",
    default=True,
    show_default=True,
    help="--not-fixed reopens the request to the same team.",
)
@click.option("--note")
@JSON_OPTION
@pass_crm
def request_revisit(
    crm: Any, request_id: int, satisfaction: int, fixed: bool, note: str | None, as_json: bool
) -> None:
    """Record the owner revisit after completion."""
    emit(
        req.revisit(crm, request_id, satisfaction=satisfaction, fixed=fixed, note=note),
        as_json,
        _request_line,
    )


@request.command("warranty", context_settings=NUMBER_ARGUMENTS)
@click.argument("request_id", type=PositiveInt("request id"))
@click.option("--status", type=click.Choice(["in", "out", "n/a"]), required=True)
@click.option("--reason", required=True)
@JSON_OPTION
@pass_crm
def request_warranty(crm: Any, request_id: int, status: str, reason: str, as_json: bool) -> None:
    """Override a request's warranty class.

    Override a request's warranty classification, with the reason."""
    emit(
        req.set_warranty(crm, request_id, status, reason),
        as_json,
        lambda r: f"request {r['id']}: {r['warranty']} - {r['warranty_reason']}",
    )


# -- incidents -----------------------------------------------------------------------------------
@group.group()
def incident() -> None:
    """Clusters of requests in one building.

    Owner-rights incidents: clusters of requests in one building."""


def _incident_line(i: dict[str, Any]) -> str:
    return (
        f"{i['id']:>4} {i['status']:<7} {i['building']:<12} {i['category']:<15} "
        f"{i['request_count']:>3} requests  opened {_d(i['opened_at'])}  "
        f"requests {', '.join(map(str, i['requests']))}"
    )


@incident.command("list")
@click.option("--open", "open_only", is_flag=True)
@JSON_OPTION
@pass_crm
def incident_list(crm: Any, open_only: bool, as_json: bool) -> None:
    """Incidents."""
    emit(
        req.list_incidents(crm, open_only=open_only),
        as_json,
        lambda rows: _lines(rows, _incident_line, "no incidents"),
    )


@incident.command("show", context_settings=NUMBER_ARGUMENTS)
@click.argument("incident_id", type=PositiveInt("incident id"))
@JSON_OPTION
@pass_crm
def incident_show(crm: Any, incident_id: int, as_json: bool) -> None:
    """An incident and its linked requests."""
    emit(
        req.get_incident(crm, incident_id),
        as_json,
        lambda i: "\n".join(
            [_incident_line(i)]
            + [
                f"      {d['id']:>5} {d['state']:<11} customer {d['customer_id']} "
                f"{_d(d['reported_at'])}: {d['description']}"
                for d in i["details"]
            ]
        ),
    )


@incident.command("close", context_settings=NUMBER_ARGUMENTS)
@click.argument("incident_id", type=PositiveInt("incident id"))
@click.option("--note", required=True, help="What management did.")
@JSON_OPTION
@pass_crm
def incident_close(crm: Any, incident_id: int, note: str, as_json: bool) -> None:
    """Close an incident."""
    emit(req.close_incident(crm, incident_id, note), as_json, _incident_line)


# -- reports ---------------------------------------------------------------------------------------
@group.group()
def report() -> None:
    """Open requests, deadlines, satisfaction.

    Open requests by age, deadline compliance, satisfaction."""


@report.command("ages")
@click.option("--at", help="ISO date-time (default: now).")
@JSON_OPTION
@pass_crm
def report_ages(crm: Any, at: str | None, as_json: bool) -> None:
    """Requests not closed, by age."""
    emit(
        reports.ages(crm, at=parse_at(at)),
        as_json,
        lambda d: "\n".join(
            [f"{d['open']} open requests as of {_d(d['as_of'])}"]
            + [
                f"  {b['age']:<8} {b['count']:>5}  "
                + ", ".join(f"{k} {v}" for k, v in sorted(b["by_state"].items()))
                for b in d["buckets"]
            ]
        ),
    )


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


@report.command("compliance")
@click.option("--since", help="Reported on or after (ISO).")
@click.option("--until", help="Reported before (ISO).")
@click.option("--at", help="ISO date-time (default: now).")
@JSON_OPTION
@pass_crm
def report_compliance(
    crm: Any, since: str | None, until: str | None, at: str | None, as_json: bool
) -> None:
    """Deadline compliance by team."""
    d = reports.compliance(
        crm, at=parse_at(at), since=parse_at(since, "--since"), until=parse_at(until, "--until")
    )
    emit(
        d,
        as_json,
        lambda d: "\n".join(
            [
                f"{'team':<16} {'reqs':>5} {'done':>5} {'ontime':>6} {'late':>5} {'overdue':>7} "
                f"{'reopened':>8} {'compliance':>10}"
            ]
            + [
                f"{r['team']:<16} {r['requests']:>5} {r['completed']:>5} {r['on_time']:>6} "
                f"{r['late']:>5} {r['open_overdue']:>7} {r['reopened']:>8} "
                f"{_pct(r['compliance']):>10}"
                for r in [*d["teams"], d["total"]]
            ]
        ),
    )


@report.command("satisfaction")
@click.option("--by", type=click.Choice(["team", "project"]), default="team", show_default=True)
@click.option("--since", help="Revisited on or after (ISO).")
@click.option("--until", help="Revisited before (ISO).")
@JSON_OPTION
@pass_crm
def report_satisfaction(
    crm: Any, by: str, since: str | None, until: str | None, as_json: bool
) -> None:
    """Owner revisit scores by team or project."""
    d = reports.satisfaction(
        crm, by=by, since=parse_at(since, "--since"), until=parse_at(until, "--until")
    )
    emit(
        d,
        as_json,
        lambda d: _lines(
            d["rows"],
            lambda r: (
                f"{r[by]:<16} {r['revisits']:>5} revisits  mean {r['mean']:.2f}/5  "
                f"satisfied {_pct(r['satisfied_share'])}  not fixed {r['not_fixed']}"
            ),
            "no revisits",
        ),
    )
