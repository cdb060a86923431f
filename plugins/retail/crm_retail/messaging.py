"""Jobs that write to members: the member-day reminder and the birthday greeting.

Both select their members set-based, skip those whose message key is already
in the outbox, and rely on ``crm.messages.enqueue`` for consent (it returns None
and queues nothing for a customer who opted out of SMS).
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

from sqlalchemy import and_, extract, or_, select

from crm_retail import _util
from crm_retail.settings import is_member_day, member_day_text, settings
from crm_retail.tables import members
from crmcore import Template
from crmcore.i18n import N_
from crmcore.schema import live_customers, messages

TEMPLATES = [
    Template(
        name="retail.birthday",
        channel="sms",
        purpose="marketing",
        text=N_(
            "Happy birthday, {name}! Your member card {member_no} has a small gift waiting "
            "for you at the service desk of {store} this week."
        ),
    ),
    Template(
        name="retail.member_day",
        channel="sms",
        purpose="marketing",
        text=N_("Dear {name}, tomorrow ({date}) is member day at {store}: {benefit} for members."),
    ),
    Template(
        name="retail.abc_survey",
        channel="sms",
        text=N_(
            "Dear {name}, {store} would value your opinion: tell us how we can serve you "
            "better (reply to this message or ask at the service desk)."
        ),
    ),
    Template(
        name="retail.survey",
        channel="sms",
        text=N_(
            "Dear {name}, thank you for shopping at {store}. How satisfied are you with "
            "your recent purchase? Reply with what you expected and what you got (1-{scale})."
        ),
    ),
    Template(
        name="retail.restock",
        channel="sms",
        text=N_(
            "Dear {name}, {item} is back in stock at {store}{offer}. You asked us to tell "
            "you: it is on the shelf now."
        ),
    ),
]


def _member_targets(crm: Any, cond: Any, prefix: str) -> tuple[list[Any], set[str]]:
    rows = crm.db.execute(
        select(members.c.customer_id, members.c.member_no, live_customers.c.name)
        .join(live_customers, live_customers.c.id == members.c.customer_id)
        .where(cond)
        .order_by(members.c.customer_id)
    ).all()
    done = {
        r.idempotency_key
        for r in crm.db.execute(
            select(messages.c.idempotency_key).where(messages.c.idempotency_key.like(prefix + "%"))
        )
    }
    return rows, done


def run_member_day_reminder(crm: Any, at: dt.datetime) -> dict[str, Any]:
    """Job ``retail.member_day_reminder``: if tomorrow is member day, an SMS to
    every member (once per member per member day: the key holds the date)."""
    s = settings(crm)
    tomorrow = at.date() + dt.timedelta(days=1)
    if not s["member_day"]["remind_day_before"] or not is_member_day(s, tomorrow):
        return {"member_day": tomorrow.isoformat(), "is_member_day": False, "queued": 0}
    prefix = f"retail:member_day:{tomorrow.isoformat()}:"
    rows, done = _member_targets(crm, members.c.customer_id.isnot(None), prefix)
    queued = refused = 0
    for r in rows:
        key = f"{prefix}{r.customer_id}"
        if key in done:
            continue
        msg = crm.messages.enqueue(
            "sms",
            customer=r.customer_id,
            template="retail.member_day",
            values={
                "name": r.name,
                "date": tomorrow.isoformat(),
                "store": s["store_name"],
                "benefit": member_day_text(s),
            },
            key=key,
            source=_util.SOURCE,
        )
        if msg is None:
            refused += 1
        else:
            queued += 1
    return {
        "member_day": tomorrow.isoformat(),
        "is_member_day": True,
        "queued": queued,
        "no_consent_or_phone": refused,
        "already_sent": len(done),
    }


def birthday_condition(day: dt.date) -> Any:
    """Members whose birthday is ``day``; on Feb 28 of a non-leap year also Feb 29."""
    month, dom = extract("month", members.c.birthday), extract("day", members.c.birthday)
    cond = and_(month == day.month, dom == day.day)
    if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
        cond = or_(cond, and_(month == 2, dom == 29))
    return and_(members.c.birthday.isnot(None), cond)


def run_birthdays(crm: Any, at: dt.datetime) -> dict[str, Any]:
    """Job ``retail.birthdays``: one greeting per member whose birthday is today,
    never twice in a year (the key holds the year)."""
    s = settings(crm)
    day = at.date()
    prefix = f"retail:birthday:{day.year}:"
    rows, done = _member_targets(crm, birthday_condition(day), prefix)
    queued, refused = [], 0
    for r in rows:
        key = f"{prefix}{r.customer_id}"
        if key in done:
            continue
        msg = crm.messages.enqueue(
            "sms",
            customer=r.customer_id,
            template="retail.birthday",
            values={"name": r.name, "member_no": r.member_no, "store": s["store_name"]},
            key=key,
            source=_util.SOURCE,
        )
        if msg is None:
            refused += 1
        else:
            queued.append(r.customer_id)
    return {
        "date": day.isoformat(),
        "birthdays": len(rows),
        "queued": len(queued),
        "no_consent_or_phone": refused,
        "customers": queued,
    }
