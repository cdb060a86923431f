"""Customer search: by phone fragment, name (Chinese included, and pinyin
initials with the optional ``pypinyin``), external id, e-mail and the keys
plugins register (``crm_search_keys``).

The index is the ``search_terms`` table, kept in step with every write by
database triggers (see :mod:`crmcore.schema`); on SQLite an FTS5 trigram table
answers fragments, on PostgreSQL a ``pg_trgm`` GIN index. A search is one
statement over the index and the plugins' key columns, joined to the live
customers the acting principal may see (the access filter's own rewrite), so a
rep never finds another rep's customer and merged or forgotten records never
show. Results rank exact matches above prefixes above fragments; personal data
is masked as the caller's permissions require.
"""

from __future__ import annotations

from typing import Any

from crmcore import contacts
from crmcore.errors import NotFound, ValidationError
from crmcore.present import show_email, show_phone
from crmcore.schema import search_pinyin, search_terms
from crmcore.search._query import (
    MAX_LIMIT,
    RANKS,
    exact_contact_statement,
    query_forms,
    search_statement,
    visible_customers,
)
from crmcore.search.keys import SearchKey
from crmcore.storage._driver import connection, dialect_name

# the tables SQLite's FTS5 keeps for ``search_fts`` (a virtual table and its shadows)
SQLITE_INDEX_TABLES = frozenset(
    {"search_fts", "search_fts_data", "search_fts_idx", "search_fts_docsize", "search_fts_config"}
)


def search_keys(crm: Any) -> list[SearchKey]:
    """The keys the enabled plugins register through ``crm_search_keys``."""
    found: list[SearchKey] = []
    for owner, keys in crm.plugins.each("crm_search_keys"):
        for key in keys or ():
            if not isinstance(key, SearchKey):
                raise ValidationError(
                    f"plugin {owner}: crm_search_keys returned {type(key).__name__}; "
                    "expected crmcore.search.SearchKey"
                )
            found.append(key)
    return found


def result(crm: Any, row: Any, rank: str | None = None) -> dict[str, Any]:
    """A found customer as output: phone and e-mail masked without 'pii'."""
    out = {
        "id": row.id,
        "external_id": row.external_id,
        "name": row.name,
        "phone": show_phone(crm, row.phone),
        "email": show_email(crm, row.email),
        "stage": row.stage,
        "owner_id": row.owner_id,
    }
    if rank is not None:
        out["match"] = rank
    return out


def search_customers(crm: Any, text: str, *, limit: int = 20) -> list[dict[str, Any]]:
    """The customers matching ``text`` that the acting principal may see, best
    first: exact matches of a key, then prefixes, then fragments; within a
    rank by name and id. Each is a dict (id, external_id, name, phone, email,
    stage, owner_id, match), phone and e-mail masked as the principal requires.

    ``text`` is a phone fragment in any form (``1111``, ``138 1234``,
    ``+86 138-1234-5678``), part of a name, pinyin initials (``wf`` for 吴芳),
    an external id, an e-mail or a plugin's key (member, policy, meter, unit
    number). Fragments of fewer than three characters match from the start of
    a key only."""
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"search: --limit {limit!r}; expected 1 to {MAX_LIMIT}")
    keys = search_keys(crm)
    with crm.transaction(write=False) as db:
        stmt = search_statement(crm, text, keys, limit=limit, dialect=dialect_name(db))
        rows = connection(db).execute(stmt).all()
        return [result(crm, r, RANKS[int(r.search_rank)]) for r in rows]


def find_by_contact(crm: Any, ref: str) -> int | None:
    """The id of the one visible customer whose phone or e-mail (own or a
    contact point) is ``ref``; None when ``ref`` is neither a phone number nor
    an e-mail address. No visible holder is :class:`NotFound`; several are a
    :class:`ValidationError` that lists them and how to narrow."""
    text = ref.strip() if isinstance(ref, str) else ""
    forms: list[str] = []
    try:
        forms.append(contacts.normalise_phone(text, crm.config.core["country_code"]))
    except ValidationError:
        pass
    try:
        forms.append(contacts.normalise_email(text))
    except ValidationError:
        pass
    if not forms:
        return None
    with crm.transaction(write=False) as db:
        rows = connection(db).execute(exact_contact_statement(crm, forms)).all()
    if not rows:
        raise NotFound(f"customer {text!r} not found")
    if len(rows) > 1:
        ids = ", ".join(str(r.id) for r in rows)
        raise ValidationError(
            f"{text!r} is the phone or e-mail of {len(rows)} customers ({ids}): "
            "give the id or the external id instead"
        )
    return int(rows[0].id)


def resolve_ref(crm: Any, ref: Any) -> Any:
    """``ref`` itself when it names a customer by id or external id, else the id
    of the one visible customer with that phone or e-mail (see
    :func:`find_by_contact`); a REF that is none of these is :class:`NotFound`."""
    try:
        crm.customers.get(ref)
        return ref
    except NotFound:
        found = find_by_contact(crm, ref) if isinstance(ref, str) else None
        if found is None:
            raise
        return found


def reindex(crm: Any) -> dict[str, int]:
    """Fill the pinyin table (when ``pypinyin`` is installed) and rebuild the
    whole index from the customers and contact points, set-based (admin).

    The triggers keep the index current; this is for installing the
    ``pinyin`` extra later, or after restoring rows written around them."""
    from crmcore.search import _rebuild

    crm.staff.require_admin("rebuild the search index")
    with crm.transaction() as db:
        with db.unscoped("rebuild the search index over the whole base"):
            pinyin = _rebuild.fill_pinyin(db)
            terms = _rebuild.rebuild_terms(db)
    return {"pinyin_characters": pinyin, "terms": terms}


__all__ = [
    "SQLITE_INDEX_TABLES",
    "SearchKey",
    "find_by_contact",
    "query_forms",
    "reindex",
    "resolve_ref",
    "result",
    "search_customers",
    "search_keys",
    "search_pinyin",
    "search_terms",
    "visible_customers",
]
