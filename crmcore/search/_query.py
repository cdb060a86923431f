"""The search statement: ranked matches over the index and the plugins' keys,
joined to the customers the acting principal may see."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    column,
    func,
    or_,
    select,
    table,
    union_all,
)

from crmcore import contacts
from crmcore.errors import ValidationError
from crmcore.schema import live_customers, search_terms
from crmcore.search.keys import SearchKey

MAX_LIMIT = 500
MAX_QUERY = 100
# fragments of fewer characters match only from the start of a key (an index
# range): a trigram index answers fragments of three characters or more
MIN_FRAGMENT = 3
RANKS = ("exact", "prefix", "fragment")
# above every character a key can hold: ``term < prefix + TOP`` closes a prefix range
TOP = "\U0010ffff"
_PHONE_LIKE = re.compile(r"^\+?[\d\s\-().\u00a0/]+$")
_SEPARATORS = re.compile(r"[\s\-().\u00a0/]")
# the SQLite FTS5 trigram table over search_terms (see crmcore_0013)
_FTS = table("search_fts", column("rowid"), column("search_fts"))


def query_forms(text: str, country_code: str) -> list[str]:
    """The forms of ``text`` to look for: lower-cased as typed and, for what
    looks like (part of) a phone number, its digits without separators (``00``
    also read as ``+``) and the stored E.164 form of a whole number."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("search: give the text to look for (a name, phone, e-mail or key)")
    typed = " ".join(text.split())
    if len(typed) > MAX_QUERY:
        raise ValidationError(f"search: {len(typed)} characters; at most {MAX_QUERY}")
    forms = [typed.lower()]
    if _PHONE_LIKE.match(typed):
        digits = _SEPARATORS.sub("", typed)
        forms.append(digits)
        if digits.startswith("00"):  # the international prefix, or zeros of the number
            forms.append("+" + digits[2:])
        try:
            forms.append(contacts.normalise_phone(typed, country_code))
        except ValidationError:
            pass  # a fragment, not a whole number
    return list(dict.fromkeys(f for f in forms if f))


def _prefix(col: Any, form: str, dialect: str) -> ColumnElement[bool]:
    """``col`` starts with ``form``, as an index can answer it."""
    if dialect == "postgresql":  # the text_pattern_ops index answers LIKE 'x%'
        return col.startswith(form, autoescape=True)
    return and_(col >= form, col < form + TOP)


def _fts_phrase(form: str) -> str:
    """``form`` as one FTS5 phrase (a substring query for the trigram tokenizer)."""
    return '"' + form.replace('"', '""') + '"'


def _term_hits(forms: list[str], dialect: str) -> Any:
    """(customer id, rank) of every index row matching one of ``forms``."""
    col = search_terms.c.term
    exact = or_(*(col == f for f in forms))
    prefix = or_(*(_prefix(col, f, dialect) for f in forms))
    long_forms = [f for f in forms if len(f) >= MIN_FRAGMENT]
    matches: list[ColumnElement[bool]] = [exact, prefix]
    if long_forms:
        if dialect == "sqlite":
            phrases = " OR ".join(_fts_phrase(f) for f in long_forms)
            matches.append(
                search_terms.c.id.in_(
                    select(_FTS.c.rowid).where(_FTS.c.search_fts.op("MATCH")(phrases))
                )
            )
        else:  # the pg_trgm GIN index answers LIKE '%x%'
            matches.extend(col.contains(f, autoescape=True) for f in long_forms)
    rank = case((exact, 0), (prefix, 1), else_=2)
    return select(search_terms.c.for_customer_id.label("cid"), rank.label("rank")).where(
        or_(*matches)
    )


def _key_hits(key: SearchKey, text: str, dialect: str) -> Any:
    """(customer id, rank) of every row of a plugin's key column matching ``text``
    as typed, in upper or in lower case."""
    col = key.value
    forms = list(dict.fromkeys((text, text.upper(), text.lower())))
    exact = or_(*(col == f for f in forms))
    prefix = or_(*(_prefix(col, f, dialect) for f in forms))
    matches: list[ColumnElement[bool]] = [exact, prefix]
    if len(text) >= MIN_FRAGMENT:
        matches.append(func.lower(col).contains(text.lower(), autoescape=True))
    rank = case((exact, 0), (prefix, 1), else_=2)
    stmt = select(key.customer.label("cid"), rank.label("rank")).where(or_(*matches))
    if key.where is not None:
        stmt = stmt.where(key.where)
    return stmt.select_from(key.join) if key.join is not None else stmt


def visible_customers(crm: Any) -> Any:
    """The live customers the acting principal may see, as a subquery: the
    access filter's own rewrite of ``SELECT * FROM live_customers``."""
    stmt = select(live_customers)
    principal = crm.db.principal
    if not principal.unrestricted:
        crm.db.catalog.check(stmt, principal)
        stmt = crm.db.catalog.scope(stmt, principal)
    return stmt.subquery("visible")


def search_statement(
    crm: Any, text: str, keys: Iterable[SearchKey], *, limit: int, dialect: str
) -> Any:
    """One statement: the best rank of each visible customer matching ``text``
    (through the index or a plugin's key), best first, then by name and id."""
    forms = query_forms(text, crm.config.core["country_code"])
    typed = " ".join(text.split())
    parts = [_term_hits(forms, dialect), *(_key_hits(k, typed, dialect) for k in keys)]
    hits = union_all(*parts).subquery("hits") if len(parts) > 1 else parts[0].subquery("hits")
    best = (
        select(hits.c.cid, func.min(hits.c.rank).label("rank"))
        .group_by(hits.c.cid)
        .subquery("best")
    )
    visible = visible_customers(crm)
    return (
        select(visible, best.c.rank.label("search_rank"))
        .join(best, best.c.cid == visible.c.id)
        .order_by(best.c.rank, visible.c.name, visible.c.id)
        .limit(limit)
    )


def exact_contact_statement(crm: Any, forms: list[str]) -> Any:
    """The visible customers holding one of ``forms`` as a phone or an e-mail
    (their own or a contact point), by id."""
    held = select(search_terms.c.for_customer_id).where(
        search_terms.c.kind.in_(("phone", "email")),
        search_terms.c.term.in_(forms),
    )
    visible = visible_customers(crm)
    return select(visible).where(visible.c.id.in_(held)).order_by(visible.c.id).limit(10)
