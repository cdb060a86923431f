"""crm customer search / search-reindex: finding customers by any key."""

from __future__ import annotations

from typing import Any

import click

from crmcore.cli._app import JSON_OPTION, emit, pass_crm
from crmcore.cli._customers import customer
from crmcore.cli.params import Whole


def _hit_line(h: dict[str, Any]) -> str:
    contact = " ".join(x for x in (h["phone"], h["email"], h["external_id"]) if x)
    return f"{h['id']:>6}  {h['name']}  [{h['stage']}]  {contact}  ({h['match']})"


@customer.command("search")
@click.argument("text")
@click.option("--limit", type=Whole(1), default=20, show_default=True, help="Most results.")
@JSON_OPTION
@pass_crm
def customer_search(crm: Any, text: str, limit: int, as_json: bool) -> None:
    """Find customers by phone, name or any key.

    TEXT is a phone fragment (the last four digits), part of a name, pinyin
    initials, an external id, an e-mail or a plugin's key (member, policy,
    meter, unit number). Best matches first: exact, prefix, fragment; only
    customers you may see."""
    from crmcore.search import search_customers

    hits = search_customers(crm, text, limit=limit)
    emit(
        hits,
        as_json,
        lambda rows: "\n".join(_hit_line(h) for h in rows) or f"no customer matches {text!r}",
    )


@customer.command("search-reindex")
@JSON_OPTION
@pass_crm
def customer_search_reindex(crm: Any, as_json: bool) -> None:
    """Rebuild the search index (admin).

    After installing the pinyin extra, or to repair it; writes keep it current
    by themselves."""
    from crmcore.search import reindex

    done = reindex(crm)
    emit(
        done,
        as_json,
        lambda d: (
            f"search index rebuilt: {d['terms']} keys, "
            f"{d['pinyin_characters']} characters with pinyin"
        ),
    )
