"""Rebuilding the search index over the whole base, set-based (``crm search
reindex``): the same rows the triggers of crmcore_0013 write, from scratch."""

from __future__ import annotations

import unicodedata
from typing import Any

from sqlalchemy import case, func, literal, select

from crmcore.schema import contact_points, customers, search_pinyin, search_terms
from crmcore.storage._driver import connection

# as in the triggers: the initials of a name's first PINYIN_CHARS characters
PINYIN_CHARS = 8
OWN_KEYS = (
    ("name", func.lower(customers.c.name)),
    ("external_id", func.lower(customers.c.external_id)),
    ("phone", customers.c.phone),
    ("email", func.lower(customers.c.email)),
)
_LIVE = (customers.c.merged_into_id.is_(None), customers.c.forgotten_at.is_(None))


def pinyin_initials() -> dict[str, str]:
    """Each CJK unified ideograph's initial (of its first pinyin reading); empty
    without the optional pypinyin package."""
    try:
        from pypinyin.pinyin_dict import pinyin_dict
    except ImportError:
        return {}
    out: dict[str, str] = {}
    for code, readings in pinyin_dict.items():
        if 0x4E00 <= code <= 0x9FFF and readings:
            initial = unicodedata.normalize("NFD", readings)[0].lower()
            if initial.isascii() and initial.isalpha():
                out[chr(code)] = initial
    return out


def fill_pinyin(db: Any) -> int:
    """Replace the pinyin table's rows; how many characters it now holds."""
    initials = pinyin_initials()
    db.execute(search_pinyin.delete())
    if initials:
        connection(db).execute(
            search_pinyin.insert(), [{"ch": ch, "initial": i} for ch, i in initials.items()]
        )
    return len(initials)


def _initials_of(name: Any) -> Any:
    parts = [
        case(
            (
                func.length(name) >= i,
                func.coalesce(
                    select(search_pinyin.c.initial)
                    .where(search_pinyin.c.ch == func.substr(name, i, 1))
                    .scalar_subquery(),
                    "",
                ),
            ),
            else_="",
        )
        for i in range(1, PINYIN_CHARS + 1)
    ]
    expr: Any = parts[0]
    for part in parts[1:]:
        expr = expr.op("||")(part)
    return expr


def rebuild_terms(db: Any) -> int:
    """Delete every index row and write them again; how many were written."""
    db.execute(search_terms.delete())
    cols = ["for_customer_id", "origin", "kind", "term"]
    for kind, expr in OWN_KEYS:
        db.execute(
            search_terms.insert().from_select(
                cols,
                select(customers.c.id, literal("customer"), literal(kind), expr).where(
                    expr.is_not(None), *_LIVE
                ),
            )
        )
    initials = select(customers.c.id, _initials_of(customers.c.name).label("p")).where(*_LIVE)
    sub = initials.subquery("initials")
    db.execute(
        search_terms.insert().from_select(
            cols,
            select(sub.c.id, literal("pinyin"), literal("pinyin"), sub.c.p).where(sub.c.p != ""),
        )
    )
    db.execute(
        search_terms.insert().from_select(
            cols,
            select(
                contact_points.c.customer_id,
                literal("contact"),
                contact_points.c.kind,
                func.lower(contact_points.c.value),
            )
            .join(customers, customers.c.id == contact_points.c.customer_id)
            .where(*_LIVE),
        )
    )
    return int(connection(db).execute(select(func.count()).select_from(search_terms)).scalar_one())
