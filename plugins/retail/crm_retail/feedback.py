"""After-sale feedback: sampled satisfaction surveys and their report.

- ``sample``: survey invitations to a random sample of recent buyers. The
  sample is drawn with ``random.Random(seed)`` from the buyers sorted by id, so
  the same seed over the same data gives the same sample; the seed defaults to
  a hash of the survey name. A survey name is used once (a rerun returns it).
- ``answer``: an answer (expected and perceived quality on a 1..scale scale)
  is recorded as a ``survey`` interaction and in ``retail_survey_answers``.
- ``report``: satisfaction C = perceived / expected per period, computed as
  sum(perceived) / sum(expected) over the period's answers (C >= 1: met or
  beat expectations), with the share of answers with perceived >= expected.
"""

from __future__ import annotations

import datetime as dt
import random
import zlib
from typing import Any

from sqlalchemy import insert, select, update

from crm_retail import _util
from crm_retail.settings import settings
from crm_retail.tables import survey_answers, survey_invites, surveys
from crmcore import Conflict, NotFound, ValidationError
from crmcore.parse import clean_text
from crmcore.schema import customers, live_customers, transactions

PERIODS = ("week", "month", "quarter", "year")


def _survey(crm: Any, name: str) -> Any:
    row = crm.db.execute(select(surveys).where(surveys.c.name == name)).first()
    if row is None:
        raise NotFound(f"survey {name!r} not found")
    return row


def _summary(crm: Any, row: Any) -> dict[str, Any]:
    invited = crm.db.execute(
        select(survey_invites.c.customer_id, survey_invites.c.message_id)
        .where(survey_invites.c.survey_id == row.id)
        .order_by(survey_invites.c.id)
    ).all()
    return {
        "survey": row.name,
        "at": row.at,
        "seed": int(row.seed),
        "size": row.size,
        "recent_days": row.recent_days,
        "recent_buyers": row.buyers,
        "sampled": [r.customer_id for r in invited],
        "messages_queued": sum(1 for r in invited if r.message_id is not None),
    }


def sample(
    crm: Any,
    *,
    name: str | None = None,
    size: int | None = None,
    recent_days: int | None = None,
    seed: int | None = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    with crm.transaction(command="retail survey sample"):
        _util.require_unrestricted(crm, "sample survey customers")
        s = settings(crm)["survey"]
        when = at or crm.now()
        name = (
            clean_text(name, field="survey name", max_len=100, required=False)
            or f"after-sale-{when:%Y-%m-%d}"
        )
        existing = crm.db.execute(select(surveys).where(surveys.c.name == name)).first()
        if existing is not None:
            return _summary(crm, existing) | {"created": False}
        size = _util.positive_int(size if size is not None else s["sample_size"], "sample size")
        days = _util.positive_int(
            recent_days if recent_days is not None else s["recent_days"], "recent days"
        )
        if seed is None:
            seed = zlib.crc32(name.encode())
        elif isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**62:
            raise ValidationError(f"seed: expected a whole number >= 0, got {seed!r}")
        buyers = [
            r.customer_id
            for r in crm.db.execute(
                select(transactions.c.customer_id)
                .distinct()
                .join(live_customers, live_customers.c.id == transactions.c.customer_id)
                .where(
                    transactions.c.occurred_at > when - dt.timedelta(days=days),
                    transactions.c.occurred_at <= when,
                    transactions.c.amount_cents > 0,
                )
                .order_by(transactions.c.customer_id)
            )
        ]
        picked = random.Random(seed).sample(buyers, min(size, len(buyers)))
        res = crm.db.execute(
            insert(surveys).values(
                name=name, at=when, seed=seed, size=size, recent_days=days, buyers=len(buyers)
            )
        )
        sid = res.inserted_primary_key[0]
        names = {
            r.id: r.name
            for part in _util.chunks(picked)
            for r in crm.db.execute(
                select(customers.c.id, customers.c.name).where(customers.c.id.in_(part))
            )
        }
        for cid in picked:
            msg = crm.messages.enqueue(
                "sms",
                customer=cid,
                template="retail.survey",
                values={
                    "name": names[cid],
                    "store": settings(crm)["store_name"],
                    "scale": s["scale"],
                },
                key=f"retail:survey:{sid}:{cid}",
                source=_util.SOURCE,
            )
            crm.db.execute(
                insert(survey_invites).values(
                    survey_id=sid,
                    customer_id=cid,
                    invited_at=when,
                    message_id=msg.id if msg is not None else None,
                )
            )
        return _summary(crm, _survey(crm, name)) | {"created": True}


def answer(
    crm: Any,
    customer: Any,
    *,
    expected: int,
    perceived: int,
    survey: str | None = None,
    comment: str | None = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    with crm.transaction(command="retail survey answer"):
        c = _util.customer_row(crm, customer)
        scale = settings(crm)["survey"]["scale"]
        for what, v in (("expected", expected), ("perceived", perceived)):
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= scale:
                raise ValidationError(f"{what}: expected a whole number 1..{scale}, got {v!r}")
        comment = clean_text(comment, field="comment", max_len=4000, required=False, multiline=True)
        when = at or crm.now()
        sid = None
        if survey is not None:
            row = _survey(crm, survey)
            sid = row.id
            inv = crm.db.execute(
                select(survey_invites).where(
                    survey_invites.c.survey_id == sid, survey_invites.c.customer_id == c.id
                )
            ).first()
            if inv is None:
                raise ValidationError(f"customer {c.id} was not invited to survey {survey!r}")
            if inv.answered_at is not None:
                raise Conflict(f"customer {c.id} already answered survey {survey!r}")
            crm.db.execute(
                update(survey_invites).where(survey_invites.c.id == inv.id).values(answered_at=when)
            )
        ratio = round(perceived / expected, 3)
        text = (
            f"after-sale survey{f' {survey}' if survey else ''}: expected {expected}, "
            f"perceived {perceived} (C = {ratio})" + (f": {comment}" if comment else "")
        )
        inter = crm.records.add_interaction(
            c.id,
            "survey",
            text,
            at=when,
            source=_util.SOURCE,
            data={
                "survey": survey,
                "expected": expected,
                "perceived": perceived,
                "satisfaction": ratio,
            },
        )
        res = crm.db.execute(
            insert(survey_answers).values(
                customer_id=c.id,
                survey_id=sid,
                at=when,
                expected=expected,
                perceived=perceived,
                comment=comment,
                interaction_id=inter.id,
            )
        )
        return {
            "id": res.inserted_primary_key[0],
            "customer_id": c.id,
            "survey": survey,
            "expected": expected,
            "perceived": perceived,
            "satisfaction": ratio,
            "interaction_id": inter.id,
        }


def period_of(at: dt.datetime, period: str) -> str:
    if period == "week":
        y, w, _ = at.isocalendar()
        return f"{y}-W{w:02d}"
    if period == "month":
        return f"{at:%Y-%m}"
    if period == "quarter":
        return f"{at.year}-Q{(at.month - 1) // 3 + 1}"
    return f"{at.year}"


def report(
    crm: Any,
    *,
    period: str = "month",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> dict[str, Any]:
    """Satisfaction per period over the answers the acting principal may see."""
    if period not in PERIODS:
        raise ValidationError(f"period {period!r}: expected one of {', '.join(PERIODS)}")
    with crm.transaction(write=False):
        q = select(survey_answers.c.at, survey_answers.c.expected, survey_answers.c.perceived)
        if since is not None:
            q = q.where(survey_answers.c.at >= since)
        if until is not None:
            q = q.where(survey_answers.c.at < until)
        rows = crm.db.execute(q.order_by(survey_answers.c.at)).all()
    groups: dict[str, list[Any]] = {}
    for r in rows:
        groups.setdefault(period_of(r.at, period), []).append(r)

    def stats(rs: list[Any]) -> dict[str, Any]:
        e = sum(r.expected for r in rs)
        p = sum(r.perceived for r in rs)
        return {
            "answers": len(rs),
            "expected_avg": round(e / len(rs), 3),
            "perceived_avg": round(p / len(rs), 3),
            "satisfaction": round(p / e, 3),
            "met_or_beat_share": round(sum(r.perceived >= r.expected for r in rs) / len(rs), 3),
        }

    return {
        "period": period,
        "periods": [{"period": k} | stats(v) for k, v in groups.items()],
        "overall": stats(rows) if rows else None,
    }
