"""``crm retail ...``: every retail operation, each with ``--json``.

Longer than most modules: one short command per operation of the plugin."""

from __future__ import annotations

from typing import Any

import click

from crm_retail import callbacks, dm, feedback, fuel, members, points, waitlist
from crm_retail.settings import is_member_day, member_day_text, settings, tier_ladder
from crmcore import ValidationError
from crmcore.cli import JSON_OPTION, Whole, emit, parse_at, pass_crm
from crmcore.cli.output import table
from crmcore.cli.params import NUMBER_ARGUMENTS, PositiveInt
from crmcore.parse import format_money, parse_date, parse_money

AT_OPTION = click.option("--at", help="ISO date-time to run as of (default: now).")


@click.group()
def retail() -> None:
    """Retail members, points, tiers and more.

    Retail: members, tiers, points, member day, greetings, ABC service, DM reports,
    waiting lists, surveys, fuel stations."""


# -- members --------------------------------------------------------------------------------
@retail.group()
def member() -> None:
    """Join, show and list members."""


def _member_line(m: dict[str, Any]) -> str:
    nxt = (
        f"; {format_money(m['to_next_tier_cents'])} to {m['next_tier']}"
        if m.get("next_tier")
        else ""
    )
    return (
        f"{m['member_no']}  {m['name']}  tier {m['tier']} (x{m['multiplier']:g})  "
        f"{m['points_balance']} points  spend {format_money(m['rolling_spend_cents'])}{nxt}"
    )


@member.command("join")
@click.argument("ref")
@click.option("--member-no", help="The member card number (default: PREFIX + customer id).")
@click.option("--birthday", help="YYYY-MM-DD")
@AT_OPTION
@JSON_OPTION
@pass_crm
def member_join(
    crm: Any, ref: str, member_no: str | None, birthday: str | None, at: str | None, as_json: bool
) -> None:
    """Make customer REF a member."""
    emit(
        members.join(
            crm,
            ref,
            member_no=member_no,
            birthday=None if birthday is None else parse_date(birthday, field="--birthday"),
            at=parse_at(at),
        ),
        as_json,
        lambda m: "joined: " + _member_line(m),
    )


@member.command("show")
@click.argument("ref")
@JSON_OPTION
@pass_crm
def member_show(crm: Any, ref: str, as_json: bool) -> None:
    """A member's card, tier, points and spend.

    A member's card number, tier, benefits, points and spend."""
    emit(
        members.member_info(crm, ref),
        as_json,
        lambda m: _member_line(m) + "\n  benefits: " + ", ".join(m["benefits"]),
    )


@member.command("list")
@click.option("--tier")
@JSON_OPTION
@pass_crm
def member_list(crm: Any, tier: str | None, as_json: bool) -> None:
    """Members (those you may see), by member number."""
    emit(
        members.list_members(crm, tier=tier),
        as_json,
        lambda rows: table(
            ((r["member_no"], r["name"], r["tier"], r["points_balance"]) for r in rows),
            ("member", "name", "tier", "points"),
            empty="no members",
        ),
    )


@member.command("birthday")
@click.argument("ref")
@click.argument("birthday")
@JSON_OPTION
@pass_crm
def member_birthday(crm: Any, ref: str, birthday: str, as_json: bool) -> None:
    """Set member REF's BIRTHDAY (YYYY-MM-DD)."""
    emit(
        members.set_birthday(crm, ref, birthday),
        as_json,
        lambda m: f"birthday set: {m['birthday']}",
    )


# -- tiers ----------------------------------------------------------------------------------
@retail.group()
def tiers() -> None:
    """The configured tiers.

    Their nightly recomputation is the job retail.tiers (crm jobs run)."""


@tiers.command("list")
@JSON_OPTION
@pass_crm
def tiers_list(crm: Any, as_json: bool) -> None:
    """Tiers: threshold, multiplier, benefits.

    Tiers: threshold of rolling spend, point multiplier, benefits."""
    data = tier_ladder(crm)
    emit(
        data,
        as_json,
        lambda d: "\n".join(
            f"{t['name']:<10} from {format_money(t['min_spend_cents']):>12}  x{t['multiplier']:g}  "
            + ", ".join(t["benefits"])
            for t in d["tiers"]
        ),
    )


# -- points ---------------------------------------------------------------------------------
@retail.group("points")
def points_group() -> None:
    """The points ledger: show and redeem.

    Points expire through the job retail.points_expiry (crm jobs run)."""


@points_group.command("show")
@click.argument("ref")
@JSON_OPTION
@pass_crm
def points_show(crm: Any, ref: str, as_json: bool) -> None:
    """Member REF's balance and ledger."""
    emit(
        points.ledger(crm, ref),
        as_json,
        lambda d: (
            f"{d['member_no']}: {d['balance']} points\n"
            + "\n".join(
                f"  {e['at']:%Y-%m-%d %H:%M}  {e['delta']:>+7}  {e['kind']:<8} {e['reason']}"
                for e in d["entries"]
            )
        ),
    )


@points_group.command("redeem", context_settings=NUMBER_ARGUMENTS)
@click.argument("ref")
@click.argument("amount", type=PositiveInt("points"))
@click.option("--reason", default="redeemed")
@click.option("--ref", "ledger_ref", help="A unique reference (e.g. the till receipt).")
@JSON_OPTION
@pass_crm
def points_redeem(
    crm: Any, ref: str, amount: int, reason: str, ledger_ref: str | None, as_json: bool
) -> None:
    """Redeem AMOUNT points of member REF.

    Redeem AMOUNT points of member REF (refused beyond the balance)."""
    emit(
        points.redeem(crm, ref, amount, reason=reason, ref=ledger_ref),
        as_json,
        lambda d: f"redeemed {d['redeemed']} points; balance {d['balance']}",
    )


# -- member day -------------------------------------------------------------------------------
@retail.group("member-day")
def member_day() -> None:
    """The member day.

    Its status; the reminder the day before is the job retail.member_day_reminder
    (crm jobs run)."""


@member_day.command("status")
@click.option("--date", "day", help="YYYY-MM-DD (default: today).")
@JSON_OPTION
@pass_crm
def member_day_status(crm: Any, day: str | None, as_json: bool) -> None:
    """Is DATE a member day, and what members get."""
    s = settings(crm)
    when = parse_at(day, "--date") or crm.now()
    data = {
        "date": when.date().isoformat(),
        "is_member_day": is_member_day(s, when.date()),
        "config": s["member_day"],
        "benefit": member_day_text(s),
    }
    emit(
        data,
        as_json,
        lambda d: (
            f"{d['date']}: "
            + (f"member day ({d['benefit']})" if d["is_member_day"] else "not a member day")
        ),
    )


# -- DM price errors --------------------------------------------------------------------------
def _dm_line(r: dict[str, Any]) -> str:
    return (
        f"{r['id']:>5}  {r['status']:<9} customer {r['customer_id']:<6} {r['product']} "
        f"({r['promotion']}): poster {format_money(r['poster_price_cents'])} vs till "
        f"{format_money(r['till_price_cents'])}  reward {r['reward_points']}"
    )


@retail.group("dm")
def dm_group() -> None:
    """Poster (DM) price error reports."""


@dm_group.command("report")
@click.argument("ref")
@click.option("--product", required=True)
@click.option("--promotion", required=True, help="The DM/poster promotion, e.g. 2026-W24.")
@click.option("--poster-price", required=True, help="Price on the poster, e.g. 9.90")
@click.option("--till-price", required=True, help="Price on the shelf or at the till.")
@click.option("--note")
@JSON_OPTION
@pass_crm
def dm_report(
    crm: Any,
    ref: str,
    product: str,
    promotion: str,
    poster_price: str,
    till_price: str,
    note: str | None,
    as_json: bool,
) -> None:
    """Report a poster price that differs.

    Customer REF reports a poster price that differs from the till price."""
    emit(
        dm.report(
            crm,
            ref,
            product=product,
            promotion=promotion,
            poster_price=parse_money(poster_price, field="--poster-price"),
            till_price=parse_money(till_price, field="--till-price"),
            note=note,
        ),
        as_json,
        _dm_line,
    )


@dm_group.command("verify")
@click.argument("report_id")
@click.option("--note")
@JSON_OPTION
@pass_crm
def dm_verify(crm: Any, report_id: str, note: str | None, as_json: bool) -> None:
    """Verify a price report and credit it.

    Verify a report (credits the reward once per product per promotion)."""
    emit(dm.decide(crm, report_id, verified=True, note=note), as_json, _dm_line)


@dm_group.command("reject")
@click.argument("report_id")
@click.option("--reason", required=True)
@JSON_OPTION
@pass_crm
def dm_reject(crm: Any, report_id: str, reason: str, as_json: bool) -> None:
    """Reject a report, saying why."""
    emit(dm.decide(crm, report_id, verified=False, note=reason), as_json, _dm_line)


@dm_group.command("list")
@click.option("--status", type=click.Choice(["reported", "verified", "rejected"]))
@JSON_OPTION
@pass_crm
def dm_list(crm: Any, status: str | None, as_json: bool) -> None:
    """Reports (those you may see)."""
    emit(
        dm.list_reports(crm, status=status),
        as_json,
        lambda rows: "\n".join(map(_dm_line, rows)) or "no reports",
    )


# -- waiting list -----------------------------------------------------------------------------
def _wait_line(r: dict[str, Any]) -> str:
    return (
        f"{r['id']:>5}  {r['status']:<10} customer {r['customer_id']:<6} {r['item']}"
        f"  since {r['requested_at']:%Y-%m-%d %H:%M}"
    )


@retail.group("waitlist")
def waitlist_group() -> None:
    """Waiting lists for out-of-stock items.

    Out-of-stock offer items: leave contact, notify on restock."""


@waitlist_group.command("add")
@click.argument("ref")
@click.option("--item", required=True)
@click.option("--offer", help="The special offer, e.g. 'eggs 30 for 9.90'.")
@click.option("--phone", help="A contact phone other than the customer's own.")
@JSON_OPTION
@pass_crm
def waitlist_add(
    crm: Any, ref: str, item: str, offer: str | None, phone: str | None, as_json: bool
) -> None:
    """Customer REF waits for sold-out ITEM."""
    emit(waitlist.add(crm, ref, item=item, offer=offer, phone=phone), as_json, _wait_line)


@waitlist_group.command("restock")
@click.argument("item")
@JSON_OPTION
@pass_crm
def waitlist_restock(crm: Any, item: str, as_json: bool) -> None:
    """ITEM is back: notify those waiting.

    ITEM is back: notify everyone waiting, once, in request order."""
    emit(
        waitlist.restock(crm, item),
        as_json,
        lambda d: (
            f"{d['item']}: notified {len(d['notified'])}, without SMS consent or phone "
            f"{len(d['no_contact'])}"
        ),
    )


@waitlist_group.command("list")
@click.option("--item")
@click.option("--all", "all_", is_flag=True, help="Include notified entries.")
@JSON_OPTION
@pass_crm
def waitlist_list(crm: Any, item: str | None, all_: bool, as_json: bool) -> None:
    """Who is waiting, in request order.

    Who is waiting (those you may see), in request order."""
    emit(
        waitlist.list_waiting(crm, item=item, all_=all_),
        as_json,
        lambda rows: "\n".join(map(_wait_line, rows)) or "nobody waiting",
    )


# -- after-sale surveys -------------------------------------------------------------------------
@retail.group("survey")
def survey_group() -> None:
    """After-sale satisfaction surveys.

    After-sale feedback: sample, answer, satisfaction report."""


@survey_group.command("sample")
@click.option("--name", help="Survey name (default after-sale-DATE); used once.")
@click.option("--size", type=Whole(1, 1_000_000))
@click.option("--days", type=Whole(1, 36_500), help="Buyers of the last DAYS days.")
@click.option("--seed", type=Whole(), help="Random seed (default: from the name).")
@AT_OPTION
@JSON_OPTION
@pass_crm
def survey_sample(
    crm: Any,
    name: str | None,
    size: int | None,
    days: int | None,
    seed: int | None,
    at: str | None,
    as_json: bool,
) -> None:
    """Invite a random sample of buyers.

    Invite a reproducible random sample of recent buyers."""
    emit(
        feedback.sample(crm, name=name, size=size, recent_days=days, seed=seed, at=parse_at(at)),
        as_json,
        lambda d: (
            f"survey {d['survey']}: {len(d['sampled'])} of {d['recent_buyers']} "
            f"recent buyers (seed {d['seed']}), {d['messages_queued']} SMS queued"
            + ("" if d["created"] else " (existing survey)")
        ),
    )


@survey_group.command("answer")
@click.argument("ref")
@click.option("--expected", type=Whole(), required=True)
@click.option("--perceived", type=Whole(), required=True)
@click.option("--survey", "survey_name")
@click.option("--comment")
@AT_OPTION
@JSON_OPTION
@pass_crm
def survey_answer(
    crm: Any,
    ref: str,
    expected: int,
    perceived: int,
    survey_name: str | None,
    comment: str | None,
    at: str | None,
    as_json: bool,
) -> None:
    """Record a customer's survey answer.

    Record customer REF's answer (expected and perceived, 1..scale)."""
    emit(
        feedback.answer(
            crm,
            ref,
            expected=expected,
            perceived=perceived,
            survey=survey_name,
            comment=comment,
            at=parse_at(at),
        ),
        as_json,
        lambda d: f"recorded: C = {d['satisfaction']}",
    )


@survey_group.command("report")
@click.option("--period", type=click.Choice(feedback.PERIODS), default="month", show_default=True)
@click.option("--since")
@click.option("--until")
@JSON_OPTION
@pass_crm
def survey_report(
    crm: Any, period: str, since: str | None, until: str | None, as_json: bool
) -> None:
    """Satisfaction C = perceived / expected per period."""
    emit(
        feedback.report(
            crm, period=period, since=parse_at(since, "--since"), until=parse_at(until, "--until")
        ),
        as_json,
        lambda d: (
            "\n".join(
                f"{p['period']:<9} C = {p['satisfaction']:.3f}  ({p['answers']} answers, "
                f"{p['met_or_beat_share'] * 100:.0f}% met or beat expectations)"
                for p in d["periods"]
            )
            or "no answers"
        ),
    )


# -- fuel stations ------------------------------------------------------------------------------
def _fuel_line(p: dict[str, Any]) -> str:
    return (
        f"{p['plate']}  step {p['step']}/3  customer {p['customer_id']}  {p['name']}  "
        f"{p['car_model'] or ''}"
        + (f"  {p['employer']}" if p["employer"] else "")
        + (f"  {p['phone']}" if p["phone"] else "")
    )


@retail.group("fuel")
def fuel_group() -> None:
    """Fuel stations: profiling and call-backs.

    Fuel stations: three-visit profiling, 1:15, overdue call-backs."""


@fuel_group.command("visit1")
@click.option("--plate", required=True)
@click.option("--model", "car_model", required=True)
@click.option("--station")
@click.option("--staff", "staff_ref", metavar="STAFF", help="The employee who served.")
@JSON_OPTION
@pass_crm
def fuel_visit1(
    crm: Any, plate: str, car_model: str, station: str | None, staff_ref: str | None, as_json: bool
) -> None:
    """First visit: plate and car model only."""
    emit(
        fuel.visit1(crm, plate=plate, car_model=car_model, station=station, staff_ref=staff_ref),
        as_json,
        _fuel_line,
    )


@fuel_group.command("visit2")
@click.argument("plate")
@click.option("--name", required=True)
@click.option("--employer", required=True)
@click.option("--consent", is_flag=True, help="The customer agreed to keeping name and employer.")
@click.option(
    "--staff", "staff_ref", metavar="STAFF", help="The employee (becomes account manager)."
)
@JSON_OPTION
@pass_crm
def fuel_visit2(
    crm: Any,
    plate: str,
    name: str,
    employer: str,
    consent: bool,
    staff_ref: str | None,
    as_json: bool,
) -> None:
    """Second visit: name and employer, with consent."""
    emit(
        fuel.visit2(crm, plate, name=name, employer=employer, consent=consent, staff_ref=staff_ref),
        as_json,
        _fuel_line,
    )


@fuel_group.command("visit3")
@click.argument("plate")
@click.option("--phone", required=True)
@click.option("--email")
@click.option(
    "--detail",
    "details",
    multiple=True,
    metavar="KEY=VALUE",
    help="More profile data, e.g. fuel=95 or card=1234.",
)
@click.option("--no-sms", is_flag=True, help="The customer does not consent to SMS.")
@click.option("--staff", "staff_ref", metavar="STAFF")
@JSON_OPTION
@pass_crm
def fuel_visit3(
    crm: Any,
    plate: str,
    phone: str,
    email: str | None,
    details: tuple[str, ...],
    no_sms: bool,
    staff_ref: str | None,
    as_json: bool,
) -> None:
    """Third visit: phone and the full profile."""
    extra = {}
    for item in details:
        if "=" not in item:
            raise ValidationError(f"--detail {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        extra[k.strip()] = v.strip()
    emit(
        fuel.visit3(
            crm,
            plate,
            phone=phone,
            email=email,
            details=extra,
            sms_consent=not no_sms,
            staff_ref=staff_ref,
        ),
        as_json,
        _fuel_line,
    )


@fuel_group.command("show")
@click.argument("plate")
@JSON_OPTION
@pass_crm
def fuel_show(crm: Any, plate: str, as_json: bool) -> None:
    """The profile of PLATE."""
    emit(fuel.show(crm, plate), as_json, _fuel_line)


@fuel_group.command("ratio")
@JSON_OPTION
@pass_crm
def fuel_ratio(crm: Any, as_json: bool) -> None:
    """Employees below the 1:15 rule.

    The 1:15 rule: employees managing fewer than N customers."""
    emit(
        fuel.ratio_report(crm),
        as_json,
        lambda d: "\n".join(
            [f"1:{d['required']} rule: {len(d['under'])} of {d['employees']} employees under"]
            + [
                f"  {x['staff']:<12} {x['customers']:>3} customers (short by {x['short_by']})"
                for x in d["under"]
            ]
        ),
    )


@fuel_group.command("callbacks")
@click.option("--all", "all_", is_flag=True, help="Include those with an outcome.")
@JSON_OPTION
@pass_crm
def fuel_callbacks(crm: Any, all_: bool, as_json: bool) -> None:
    """Call-backs for overdue customers.

    Call-backs for overdue customers (those you may see)."""
    emit(
        callbacks.list_callbacks(crm, open_only=not all_),
        as_json,
        lambda rows: (
            "\n".join(
                f"{r['id']:>5}  customer {r['customer_id']:<6} {r['days_since']:.0f} days "
                f"since last purchase (usual {r['average_interval_days']:.1f})  "
                f"{r['outcome'] or 'open'}"
                for r in rows
            )
            or "no call-backs"
        ),
    )


@fuel_group.command("outcome")
@click.argument("callback_id")
@click.option("--outcome", required=True, help="What the call found.")
@JSON_OPTION
@pass_crm
def fuel_outcome(crm: Any, callback_id: str, outcome: str, as_json: bool) -> None:
    """Record a call-back's outcome.

    Record the outcome of call-back CALLBACK_ID (completes the reminder)."""
    emit(
        callbacks.record_outcome(crm, callback_id, outcome),
        as_json,
        lambda r: f"call-back {r['id']}: {r['outcome']}",
    )
