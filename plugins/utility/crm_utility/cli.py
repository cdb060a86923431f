"""``crm utility ...``: every command takes ``--json``.

Longer than most modules: one short command per operation of the plugin."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any, overload

import click

from crm_utility import accounts, advice, arrears, charts, equipment, readings, tickets
from crm_utility.config import AREAS, CLASSES, DEVICE_KINDS, TICKET_TYPES, VOLTAGE_LEVELS
from crmcore import ValidationError
from crmcore.cli import JSON_OPTION, Whole, emit, parse_at, pass_crm
from crmcore.files import private_output
from crmcore.parse import format_money, parse_date, parse_money


@overload
def _date(value: str, what: str) -> dt.date: ...
@overload
def _date(value: str | None, what: str) -> dt.date | None: ...


def _date(value: str | None, what: str) -> dt.date | None:
    return None if value is None else parse_date(value, field=what)


def _dt(v: Any) -> str:
    return "-" if v is None else v.strftime("%Y-%m-%d %H:%M")


@click.group("utility")
def utility() -> None:
    """Power supply service and equipment.

    Power supply: service points, service tickets, load curves, advice, equipment, arrears."""


# -- service points ---------------------------------------------------------------------
@utility.group("point")
def point() -> None:
    """Service points (meters) of customers."""


def _point_line(p: dict[str, Any]) -> str:
    kva = f" {p['contracted_kva']} kVA" if p["contracted_kva"] else ""
    return (
        f"{p['meter_no']:<14} customer {p['customer_id']:<5} {p['customer_class']:<16} {p['voltage_level']:<6}"
        f" {p['area']:<7}{kva}{'  KEY' if p.get('key') else ''}  {p['address']}"
    )


@point.command("add")
@click.argument("customer")
@click.option("--meter", "meter_no", required=True, help="Meter number (unique).")
@click.option("--address", required=True)
@click.option("--voltage", "voltage_level", required=True, type=click.Choice(VOLTAGE_LEVELS))
@click.option("--class", "customer_class", required=True, type=click.Choice(CLASSES))
@click.option("--area", type=click.Choice(AREAS), help="Default: the config's default_area.")
@click.option("--contracted-kva", type=Whole(0, 10_000_000))
@click.option(
    "--key/--not-key", default=None, help="Flag key customer by hand (default: by the rules)."
)
@JSON_OPTION
@pass_crm
def point_add(
    crm: Any,
    customer: str,
    meter_no: str,
    address: str,
    voltage_level: str,
    customer_class: str,
    area: str | None,
    contracted_kva: int | None,
    key: bool | None,
    as_json: bool,
) -> None:
    """Add a service point for CUSTOMER."""
    p = accounts.add_point(
        crm,
        customer,
        meter_no=meter_no,
        address=address,
        voltage_level=voltage_level,
        customer_class=customer_class,
        area=area,
        contracted_kva=contracted_kva,
        key=key,
    )
    emit(
        p,
        as_json,
        lambda p: "added " + _point_line(p) + ("  (key customer)" if p["customer_key"] else ""),
    )


@point.command("list")
@click.option("--customer")
@click.option("--key", "key_only", is_flag=True, help="Key customers' points only.")
@JSON_OPTION
@pass_crm
def point_list(crm: Any, customer: str | None, key_only: bool, as_json: bool) -> None:
    """Service points you may see."""
    emit(
        accounts.list_points(crm, customer, key_only=key_only),
        as_json,
        lambda ps: "\n".join(map(_point_line, ps)) or "no service points",
    )


@point.command("key")
@click.argument("meter_no")
@click.option(
    "--set",
    "value",
    type=click.Choice(["yes", "no", "rules"]),
    required=True,
    help="yes/no: flag by hand; rules: back to the key-customer rules.",
)
@JSON_OPTION
@pass_crm
def point_key(crm: Any, meter_no: str, value: str, as_json: bool) -> None:
    """Flag a customer as key (or not).

    Flag a service point's customer as key (or not) by hand."""
    p = accounts.set_key(crm, meter_no, {"yes": True, "no": False, "rules": None}[value])
    emit(p, as_json, _point_line)


# -- service tickets ---------------------------------------------------------------------
@utility.group("ticket")
def ticket() -> None:
    """Fast-response service tickets.

    Fast-response service tickets (move them with: crm ticket move ID STATE)."""


def _ticket_line(t: dict[str, Any]) -> str:
    return (
        f"{t['ticket_id']:>5}  {t['type']:<14} {t['area']:<7} {t['state']:<10} "
        f"respond by {_dt(t['response_due'])} ({_dt(t['responded_at'])})  "
        f"on site by {_dt(t['on_site_due'])} ({_dt(t['on_site_at'])})  {t['subject']}"
    )


@ticket.command("open")
@click.argument("customer")
@click.option("--type", "type_", required=True, type=click.Choice(TICKET_TYPES))
@click.option("--subject", required=True)
@click.option("--meter", "meter_no")
@click.option("--area", type=click.Choice(AREAS), help="Default: the service point's area.")
@click.option("--owner", metavar="STAFF")
@click.option("--channel", type=click.Choice(["hotline", "online", "counter", "field"]))
@JSON_OPTION
@pass_crm
def ticket_open(
    crm: Any,
    customer: str,
    type_: str,
    subject: str,
    meter_no: str | None,
    area: str | None,
    owner: str | None,
    channel: str | None,
    as_json: bool,
) -> None:
    """Open a service ticket.

    Open a service ticket with its response and on-site deadlines."""
    t = tickets.open_service_ticket(
        crm,
        customer,
        subject,
        type=type_,
        meter_no=meter_no,
        area=area,
        owner=owner,
        channel=channel,
    )
    emit(t, as_json, _ticket_line)


@ticket.command("list")
@click.option("--open", "open_only", is_flag=True)
@click.option("--type", "type_", type=click.Choice(TICKET_TYPES))
@JSON_OPTION
@pass_crm
def ticket_list(crm: Any, open_only: bool, type_: str | None, as_json: bool) -> None:
    """Service tickets and their deadlines.

    Service tickets you may see, with their deadlines."""
    emit(
        tickets.list_service_tickets(crm, open_only=open_only, type=type_),
        as_json,
        lambda ts: "\n".join(map(_ticket_line, ts)) or "no service tickets",
    )


@ticket.command("show")
@click.argument("ticket_id")
@JSON_OPTION
@pass_crm
def ticket_show(crm: Any, ticket_id: str, as_json: bool) -> None:
    """A service ticket, its deadlines and escalations."""
    emit(
        tickets.service_ticket(crm, ticket_id),
        as_json,
        lambda t: (
            _ticket_line(t)
            + "".join(
                f"\n       escalated ({e['deadline']}) level {e['level']} to staff {e['to_staff_id']} at {_dt(e['at'])}"
                for e in t["escalations"]
            )
        ),
    )


@utility.command("compliance")
@click.option("--from", "start", required=True, help="First day (ISO date).")
@click.option("--to", "end", required=True, help="Last day (ISO date, inclusive).")
@JSON_OPTION
@pass_crm
def compliance_cmd(crm: Any, start: str, end: str, as_json: bool) -> None:
    """Deadline compliance per ticket type.

    Deadline compliance per ticket type for tickets opened in a period."""
    report = tickets.compliance(crm, _date(start, "--from"), _date(end, "--to"))

    def human(r: dict[str, Any]) -> str:
        lines = [
            f"deadline compliance {r['from']} .. {r['to']}",
            f"{'type':<16}{'tickets':>8}  {'response met/missed/pending':<30}{'on-site met/missed/pending':<30}esc",
        ]
        for t, e in r["types"].items():
            cells = []
            for k in ("response", "on_site"):
                d = e[k]
                rate = "-" if d["rate"] is None else f"{d['rate']:.0%}"
                cells.append(f"{d['met']}/{d['missed']}/{d['pending']} ({rate})")
            lines.append(
                f"{t:<16}{e['tickets']:>8}  {cells[0]:<30}{cells[1]:<30}{e['escalations']}"
            )
        return "\n".join(lines) if r["types"] else lines[0] + ": no tickets"

    emit(report, as_json, human)


# -- readings and curves -------------------------------------------------------------------
@utility.group("readings")
def readings_group() -> None:
    """Interval meter readings."""


@readings_group.command("import")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--meter", "meter_no", help="The meter, when the file has no meter_no column.")
@click.option("--interval", type=click.Choice(["15", "60"]), help="Minutes (default: detected).")
@JSON_OPTION
@pass_crm
def readings_import(
    crm: Any, path: str, meter_no: str | None, interval: str | None, as_json: bool
) -> None:
    """Import meter readings from CSV.

    Import a CSV of readings (meter_no,at,kwh[,kvarh]); all or nothing."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8-sig")
    except OSError as e:
        raise ValidationError(f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ValidationError(f"{path}: not UTF-8 text") from None
    try:
        result = readings.import_readings(
            crm,
            text,
            source=Path(path).name if path != "-" else "stdin",
            meter_no=meter_no,
            interval=int(interval) if interval else None,
        )
    except readings.ReadingsRejected as e:
        if as_json:
            emit(
                {
                    "source": e.source,
                    "stored": 0,
                    "errors": [{"line": n, "error": m} for n, m in e.errors],
                },
                True,
            )
        else:
            click.echo(f"error: {e.source}: {len(e.errors)} bad line(s), nothing stored", err=True)
            for n, m in e.errors:
                click.echo(f"  line {n}: {m}", err=True)
        raise click.exceptions.Exit(1) from None
    emit(
        result,
        as_json,
        lambda r: (
            f"stored {r['stored']} readings from {r['source']}"
            + "".join(
                f"\n  {m}: {s['readings']} x {s['interval_minutes']} min, {_dt(s['from'])} .. {_dt(s['to'])}"
                for m, s in r["meters"].items()
            )
        ),
    )


def _stats_line(s: dict[str, Any]) -> str:
    def f(v: Any, spec: str = ".2f") -> str:
        return "-" if v is None else format(v, spec)

    return (
        f"{s['day']}  {s['total_kwh']:>10,.1f} kWh  peak {s['peak_kw']:>8,.1f} kW {s['peak_at']:%H:%M}  "
        f"valley {s['valley_kw']:>8,.1f} kW {s['valley_at']:%H:%M}  avg {s['average_kw']:>8,.1f}  "
        f"LF {f(s['load_factor'])}  P/V {f(s['peak_valley_ratio'])}  PF {f(s['power_factor'])}"
        + ("" if s["complete"] else f"  incomplete {s['readings']}/{s['expected']}")
    )


@utility.command("day")
@click.argument("meter_no")
@click.argument("day")
@JSON_OPTION
@pass_crm
def day_cmd(crm: Any, meter_no: str, day: str, as_json: bool) -> None:
    """METER's load curve on DAY.

    METER's load curve on DAY with peak, valley, average, load factor, peak-valley ratio."""
    s = readings.day_stats(crm, meter_no, _date(day, "DAY"))
    emit(
        s,
        as_json,
        lambda s: (
            _stats_line(s)
            + "\n"
            + "\n".join(f"  {c['at']:%H:%M}  {c['kw']:>10,.1f} kW" for c in s["curve"])
        ),
    )


@utility.command("days")
@click.argument("meter_no")
@click.option("--from", "start", required=True)
@click.option("--to", "end", required=True)
@JSON_OPTION
@pass_crm
def days_cmd(crm: Any, meter_no: str, start: str, end: str, as_json: bool) -> None:
    """Daily statistics of METER over a period."""
    rows = readings.days_stats(crm, meter_no, _date(start, "--from"), _date(end, "--to"))
    emit(rows, as_json, lambda rs: "\n".join(map(_stats_line, rs)) or "no readings in the period")


@utility.command("export")
@click.argument("meter_no")
@click.argument("day")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "svg", "png"]), default="csv", show_default=True
)
@click.option("--out", "out", required=True, help="Output file ('-' = stdout for csv and svg).")
@JSON_OPTION
@pass_crm
def export_cmd(crm: Any, meter_no: str, day: str, fmt: str, out: str, as_json: bool) -> None:
    """Export METER's curve on DAY.

    Export METER's curve on DAY as CSV, an SVG chart or a PNG chart."""
    s = readings.day_stats(crm, meter_no, _date(day, "DAY"))
    if fmt == "png":
        if out == "-":
            raise ValidationError("--out: a PNG needs a file name")
        data: bytes | str = charts.png(crm, s)
    else:
        data = readings.curve_csv(s) if fmt == "csv" else charts.svg(crm, s)
    if out == "-":
        click.echo(data, nl=False)
        return
    # a customer's consumption: written 0600, complete or not at all, never through a link
    with private_output(out, "export", replace=True) as temp:
        if isinstance(data, bytes):
            temp.write_bytes(data)
        else:
            temp.write_text(data, encoding="utf-8")
    emit(
        {
            "meter_no": s["meter_no"],
            "day": s["day"],
            "format": fmt,
            "path": out,
            "points": len(s["curve"]),
        },
        as_json,
        lambda r: f"wrote {r['path']} ({r['format']}, {r['points']} points)",
    )


# -- advice ------------------------------------------------------------------------------------
def _advice_line(a: dict[str, Any]) -> str:
    saving = f"  [saving {format_money(a['saving_cents'])}/month]" if a["saving_cents"] else ""
    return f"{a['day']}  {a['rule']:<13} {a['summary']}{saving}"


@utility.command("advise")
@click.argument("meter_no")
@click.argument("day")
@JSON_OPTION
@pass_crm
def advise_cmd(crm: Any, meter_no: str, day: str, as_json: bool) -> None:
    """Advise a key customer on METER's DAY.

    Apply the advice rules to a key customer's METER on DAY."""
    r = advice.advise(crm, meter_no, _date(day, "DAY"))
    emit(
        r,
        as_json,
        lambda r: (
            f"{r['new']} new advice for {r['meter_no']} on {r['day']}"
            + "".join("\n  " + _advice_line(a) for a in r["advice"])
        ),
    )


@utility.command("advice")
@click.argument("customer", required=False)
@JSON_OPTION
@pass_crm
def advice_list(crm: Any, customer: str | None, as_json: bool) -> None:
    """Stored energy advice.

    Stored advice (for one customer, or all you may see)."""
    emit(
        advice.list_advice(crm, customer),
        as_json,
        lambda rs: "\n".join(map(_advice_line, rs)) or "no advice",
    )


# -- equipment ---------------------------------------------------------------------------------
@utility.group("device")
def device() -> None:
    """Equipment register of key customers."""


def _device_line(d: dict[str, Any]) -> str:
    return (
        f"{d['id']:>5}  customer {d['customer_id']:<5} {d['kind']:<12} {d['rating']:<12} "
        f"next inspection {d['next_due']}  {d['name']}"
    )


@device.command("add")
@click.argument("customer")
@click.option("--name", required=True)
@click.option("--kind", required=True, type=click.Choice(DEVICE_KINDS))
@click.option("--rating", required=True, help="e.g. '1250 kVA 10/0.4 kV'")
@click.option("--meter", "meter_no")
@click.option("--installed", help="Installation date.")
@click.option(
    "--interval-days", type=Whole(1, 36_500), help="Inspection interval (default by kind)."
)
@click.option("--next-due", help="First inspection date (default: installed + interval).")
@JSON_OPTION
@pass_crm
def device_add(
    crm: Any,
    customer: str,
    name: str,
    kind: str,
    rating: str,
    meter_no: str | None,
    installed: str | None,
    interval_days: int | None,
    next_due: str | None,
    as_json: bool,
) -> None:
    """Register a device of key customer CUSTOMER."""
    d = equipment.add_device(
        crm,
        customer,
        name=name,
        kind=kind,
        rating=rating,
        meter_no=meter_no,
        installed_on=_date(installed, "--installed"),
        interval_days=interval_days,
        next_due=_date(next_due, "--next-due"),
    )
    emit(d, as_json, lambda d: "registered " + _device_line(d))


@device.command("list")
@click.option("--customer")
@click.option("--due-by", help="Only devices due for inspection by this date.")
@JSON_OPTION
@pass_crm
def device_list(crm: Any, customer: str | None, due_by: str | None, as_json: bool) -> None:
    """Devices you may see, by next inspection date."""
    emit(
        equipment.list_devices(crm, customer, due_by=_date(due_by, "--due-by")),
        as_json,
        lambda ds: "\n".join(map(_device_line, ds)) or "no devices",
    )


@device.command("inspect")
@click.argument("device_id")
@click.option("--result", required=True, type=click.Choice(equipment.RESULTS))
@click.option("--notes", default="")
@click.option("--at", help="When (ISO; default now).")
@JSON_OPTION
@pass_crm
def device_inspect(
    crm: Any, device_id: str, result: str, notes: str, at: str | None, as_json: bool
) -> None:
    """Record an inspection of a device.

    Record an inspection of DEVICE_ID; sets the next due date."""
    d = equipment.record_inspection(crm, device_id, result=result, notes=notes, at=parse_at(at))
    emit(d, as_json, lambda d: f"inspected ({d['result']}): " + _device_line(d))


@device.command("history")
@click.argument("device_id")
@JSON_OPTION
@pass_crm
def device_history(crm: Any, device_id: str, as_json: bool) -> None:
    """Inspections of DEVICE_ID."""
    emit(
        equipment.inspections_of(crm, device_id),
        as_json,
        lambda rs: (
            "\n".join(
                f"{_dt(r['at'])}  {r['result']:<7} next {r['next_due']}  {r['notes']}" for r in rs
            )
            or "no inspections"
        ),
    )


# -- bills, payments, dunning ------------------------------------------------------------------
def _bill_text(b: dict[str, Any]) -> str:
    head = (
        f"bill {b['bill_no']} ({b['period']}) customer {b['customer_id']}: {format_money(b['amount_cents'])}, "
        f"paid {format_money(b['paid_cents'])}, outstanding {format_money(b['outstanding_cents'])}, due {b['due_on']}, "
        f"{b['status']}" + (f", {b['days_overdue']} days overdue" if b["days_overdue"] else "")
    )
    steps = "".join(
        f"\n  step {s['step']} {s['name']} {_dt(s['at'])}"
        + (f" disconnect on {s['disconnect_on']}" if s["disconnect_on"] else "")
        + (f" (withdrawn {_dt(s['withdrawn_at'])})" if s["withdrawn_at"] else "")
        + (f" — {s['note']}" if s["note"] else "")
        for s in b["steps"]
    )
    nxt = b["next_step"]
    return head + steps + (f"\n  next: {nxt['name']} from {nxt['from']}" if nxt else "")


@utility.group("bill")
def bill() -> None:
    """Electricity bills and payments."""


@bill.command("add")
@click.argument("customer")
@click.option("--bill-no", required=True)
@click.option("--period", required=True, help="YYYY-MM")
@click.option("--amount", required=True, help="Yuan, e.g. 1234.56")
@click.option("--due", required=True, help="Due date.")
@click.option("--issued", help="Issue date (default today).")
@click.option("--meter", "meter_no")
@JSON_OPTION
@pass_crm
def bill_add(
    crm: Any,
    customer: str,
    bill_no: str,
    period: str,
    amount: str,
    due: str,
    issued: str | None,
    meter_no: str | None,
    as_json: bool,
) -> None:
    """Add a bill for CUSTOMER."""
    b = arrears.add_bill(
        crm,
        customer,
        bill_no=bill_no,
        period=period,
        amount_cents=parse_money(amount, field="--amount"),
        due_on=_date(due, "--due"),
        issued_on=_date(issued, "--issued"),
        meter_no=meter_no,
    )
    emit(b, as_json, _bill_text)


@bill.command("show")
@click.argument("bill_no")
@JSON_OPTION
@pass_crm
def bill_show(crm: Any, bill_no: str, as_json: bool) -> None:
    """A bill with its payments status and dunning steps."""
    emit(arrears.show_bill(crm, bill_no), as_json, _bill_text)


@bill.command("pay")
@click.argument("bill_no")
@click.option("--amount", required=True, help="Yuan, e.g. 1234.56")
@click.option("--reference", help="Payment reference; a repeat is not counted twice.")
@click.option("--at", help="When (ISO; default now).")
@JSON_OPTION
@pass_crm
def bill_pay(
    crm: Any, bill_no: str, amount: str, reference: str | None, at: str | None, as_json: bool
) -> None:
    """Record a payment on a bill.

    Record a payment; paying in full stops the dunning ladder."""
    r = arrears.pay(
        crm, bill_no, parse_money(amount, field="--amount"), at=parse_at(at), reference=reference
    )
    emit(
        r,
        as_json,
        lambda r: (
            ("duplicate payment reference: nothing recorded\n" if r["duplicate"] else "")
            + ("paid in full: dunning stopped\n" if r["ladder_stopped"] else "")
            + _bill_text(r["bill"])
        ),
    )


@utility.command("arrears")
@JSON_OPTION
@pass_crm
def arrears_cmd(crm: Any, as_json: bool) -> None:
    """Open bills past their due date."""
    emit(arrears.arrears(crm), as_json, lambda bs: "\n".join(map(_bill_text, bs)) or "no arrears")


@utility.group("dunning")
def dunning() -> None:
    """The arrears dunning ladder."""


@dunning.command("step")
@click.argument("bill_no")
@click.argument("name")
@click.option("--disconnect-on", help="Disconnection date (disconnection_proposal only).")
@click.option("--note", default="")
@JSON_OPTION
@pass_crm
def dunning_step(
    crm: Any, bill_no: str, name: str, disconnect_on: str | None, note: str, as_json: bool
) -> None:
    """Take one dunning step now.

    Take step NAME of BILL_NO's ladder now (refused unless it is the next, due step)."""
    b = arrears.take_step(
        crm, bill_no, name, disconnect_on=_date(disconnect_on, "--disconnect-on"), note=note
    )
    emit(b, as_json, _bill_text)
