"""crm customer / staff / relationship commands."""

from __future__ import annotations

from typing import Any

import click

from crmcore.cli._app import JSON_OPTION, cli, emit, pass_crm
from crmcore.cli.params import Whole
from crmcore.present import coerce_attribute, show_email, show_phone


def customer_json(crm: Any, c: Any) -> dict[str, Any]:
    """A customer as output: personal data masked for principals without 'pii'."""
    from crmcore.masking import Masker

    attrs_ = Masker.for_crm(crm).attribute_values(c.attributes)
    return {
        "id": c.id,
        "external_id": c.external_id,
        "name": c.name,
        "kind": c.kind,
        "phone": show_phone(crm, c.phone),
        "email": show_email(crm, c.email),
        "consent_sms": c.consent_sms,
        "consent_email": c.consent_email,
        "owner_id": c.owner_id,
        "stage": c.stage,
        "attributes": attrs_,
        "created_at": c.created_at.isoformat() if c.created_at else None,
    }


def _line(d: dict[str, Any]) -> str:
    contact = " ".join(x for x in (d["phone"], d["email"]) if x)
    return f"{d['id']:>6}  {d['name']}  [{d['stage']}]  {contact}"


@cli.group()
def customer() -> None:
    """Add, find, change, merge and forget customers."""


@customer.command("add")
@click.option("--name", required=True)
@click.option("--phone")
@click.option("--email")
@click.option("--external-id")
@click.option("--owner", metavar="STAFF")
@click.option("--kind", type=click.Choice(["person", "organisation"]), default="person")
@click.option("--attr", "attrs_", multiple=True, metavar="KEY=VALUE", help="A declared attribute.")
@click.option("--no-sms", is_flag=True, help="The customer does not consent to SMS.")
@click.option("--no-email", is_flag=True, help="The customer does not consent to e-mail.")
@JSON_OPTION
@pass_crm
def customer_add(
    crm: Any,
    name: str,
    phone: str | None,
    email: str | None,
    external_id: str | None,
    owner: str | None,
    kind: str,
    attrs_: tuple[str, ...],
    no_sms: bool,
    no_email: bool,
    as_json: bool,
) -> None:
    """Add a customer (or find the existing one).

    A customer with the same phone, e-mail or external id is reported, not added again."""
    from crmcore.errors import ValidationError

    attributes = {}
    for item in attrs_:
        if "=" not in item:
            raise ValidationError(f"--attr {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        attributes[key.strip()] = coerce_attribute(crm, key.strip(), value)
    with crm.transaction():
        found = crm.customers.match(phone=phone, email=email, external_id=external_id)
        c = (
            found[0]
            if found
            else crm.customers.add(
                name,
                phone=phone,
                email=email,
                external_id=external_id,
                owner=owner,
                kind=kind,
                attributes=attributes,
                consent_sms=not no_sms,
                consent_email=not no_email,
            )
        )
        data = customer_json(crm, c) | {
            "created": found is None,
            "matched_by": found[1] if found else None,
        }
    emit(
        data,
        as_json,
        lambda d: (
            f"added customer {d['id']}: {d['name']}"
            if d["created"]
            else f"matched existing customer {d['id']} ({d['name']}) by {d['matched_by']}; "
            "nothing added"
        ),
    )


@customer.command("show")
@click.argument("ref")
@JSON_OPTION
@pass_crm
def customer_show(crm: Any, ref: str, as_json: bool) -> None:
    """Show a customer card.

    REF: an id, an external id, or a phone or e-mail held by one customer."""
    from crmcore.search import resolve_ref

    ref = resolve_ref(crm, ref)
    with crm.transaction(write=False):
        card = crm.records.card(ref, transactions_limit=10)
        data = customer_json(crm, card["customer"]) | {
            "labels": card["labels"],
            "stats": card["stats"],
            "recent_transactions": card["transactions"],
            "relationships": crm.customers.relationships(ref),
        }

    def human(d: dict[str, Any]) -> str:
        lines = [_line(d), f"        owner: {d['owner_id']}  kind: {d['kind']}"]
        if d["labels"]:
            lines.append("        labels: " + ", ".join(f"{k}={v}" for k, v in d["labels"].items()))
        if d["attributes"]:
            lines.append(
                "        attributes: " + ", ".join(f"{k}={v}" for k, v in d["attributes"].items())
            )
        if d["stats"]:
            s = d["stats"]
            lines.append(
                f"        purchases: {s['tx_count']}, spend {s['spend_cents'] / 100:.2f}, last {s['last_at']}"
            )
        return "\n".join(lines)

    emit(data, as_json, human)


@customer.command("till")
@click.argument("phone")
@click.option(
    "--limit", type=Whole(1), default=10, show_default=True, help="How many recent purchases."
)
@JSON_OPTION
@pass_crm
def customer_till(crm: Any, phone: str, limit: int, as_json: bool) -> None:
    """The till's card of the customer with PHONE.

    Stored labels (tier, segment, ...), aggregates and the last purchases,
    without the plugins' live classification ('crm customer show' has it)."""
    card = crm.records.till_lookup(phone, transactions_limit=limit)
    data = customer_json(crm, card["customer"]) | {
        "labels": card["labels"],
        "stats": card["stats"],
        "recent_transactions": card["transactions"],
    }

    def human(d: dict[str, Any]) -> str:
        lines = [_line(d)]
        if d["labels"]:
            lines.append("        labels: " + ", ".join(f"{k}={v}" for k, v in d["labels"].items()))
        if d["stats"]:
            s = d["stats"]
            lines.append(
                f"        purchases: {s['tx_count']}, spend {s['spend_cents'] / 100:.2f}, last {s['last_at']}"
            )
        for t in d["recent_transactions"]:
            lines.append(
                f"        {t['occurred_at']:%Y-%m-%d %H:%M}  {t['amount_cents'] / 100:>10.2f}"
                + (f"  {t['channel']}" if t["channel"] else "")
            )
        return "\n".join(lines)

    emit(data, as_json, human)


LIST_COLUMNS = ("id", "external id", "name", "stage", "owner", "phone", "email")


@customer.command("list")
@click.option("--stage", help="Only customers in this lifecycle stage.")
@click.option("--owner", metavar="STAFF", help="Only customers this member of staff owns.")
@click.option("--limit", type=Whole(1), default=50, show_default=True, help="Rows per page.")
@click.option("--offset", type=Whole(0), default=0, show_default=True, help="Rows to skip.")
@JSON_OPTION
@pass_crm
def customer_list(
    crm: Any, stage: str | None, owner: str | None, limit: int, offset: int, as_json: bool
) -> None:
    """List the customers you may see, paged.

    List the customers you may see, a page at a time (by id).

    Prints a table and a "showing 1-50 of N" line. With --json: an object
    {"customers": [...], "total": N, "offset": O, "limit": L, "next_offset":
    O+L or null}, each customer as 'customer show --json' prints it (without
    labels and stats).
    """
    from crmcore.cli.output import showing, table

    with crm.transaction(write=False):
        page = crm.customers.list(stage=stage, owner=owner, limit=limit, offset=offset)
        total = crm.customers.count(stage=stage, owner=owner)
        owners = {s.id: s.key for s in crm.staff.list()} if page else {}
        rows = [customer_json(crm, c) for c in page]
    end = offset + len(rows)
    data = {
        "customers": rows,
        "total": total,
        "offset": offset,
        "limit": limit,
        "next_offset": end if end < total else None,
    }

    def human(d: dict[str, Any]) -> str:
        if not d["customers"]:
            return "no customers" if not total else showing(0, total, offset=offset)
        body = table(
            (
                (
                    c["id"],
                    c["external_id"],
                    c["name"],
                    c["stage"],
                    owners.get(c["owner_id"], c["owner_id"]),
                    c["phone"],
                    c["email"],
                )
                for c in d["customers"]
            ),
            LIST_COLUMNS,
            max_width={"name": 28, "email": 30, "external id": 16},
        )
        return body + "\n" + showing(len(d["customers"]), total, offset=offset)

    emit(data, as_json, human)


@customer.command("stage")
@click.argument("ref")
@click.argument("stage")
@click.option("--reason", default="")
@JSON_OPTION
@pass_crm
def customer_stage(crm: Any, ref: str, stage: str, reason: str, as_json: bool) -> None:
    """Move a customer to another lifecycle stage."""
    change = crm.customers.change_stage(ref, stage, reason=reason)
    emit(change, as_json, lambda c: f"customer {c.customer_id}: {c.from_stage} -> {c.to_stage}")


@customer.command("update")
@click.argument("ref")
@click.option("--name")
@click.option("--phone")
@click.option("--email")
@click.option("--owner", metavar="STAFF")
@click.option("--attr", "attrs_", multiple=True, metavar="KEY=VALUE")
@JSON_OPTION
@pass_crm
def customer_update(
    crm: Any, ref: str, attrs_: tuple[str, ...], as_json: bool, **fields: Any
) -> None:
    """Change a customer's fields or attributes."""
    changes = {k: v for k, v in fields.items() if v is not None}
    if attrs_:
        changes["attributes"] = {
            k: coerce_attribute(crm, k, v) for k, v in (a.split("=", 1) for a in attrs_)
        }
    with crm.transaction():
        data = customer_json(crm, crm.customers.update(ref, **changes))
    emit(data, as_json, _line)


@customer.command("merge")
@click.argument("keep")
@click.argument("other")
@JSON_OPTION
@pass_crm
def customer_merge(crm: Any, keep: str, other: str, as_json: bool) -> None:
    """Merge customer OTHER into KEEP.

    Every record of OTHER moves to KEEP."""
    with crm.transaction():
        data = customer_json(crm, crm.customers.merge(keep, other))
    emit(data, as_json, lambda d: f"merged into customer {d['id']} ({d['name']})")


@customer.command("forget")
@click.argument("ref")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@JSON_OPTION
@pass_crm
def customer_forget(crm: Any, ref: str, yes: bool, as_json: bool) -> None:
    """Erase a customer's personal data.

    Everywhere; the transactions stay, anonymous."""
    if not yes and not as_json:
        click.confirm(f"Erase all personal data of customer {ref}?", abort=True)
    emit(
        crm.customers.forget(ref),
        as_json,
        lambda d: f"customer {d['customer']}: personal data erased",
    )


@customer.command("export")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True
)
@JSON_OPTION
@pass_crm
def customer_export(crm: Any, path: str, fmt: str, as_json: bool) -> None:
    """Export the customers you may see.

    Needs 'export' (personal data needs 'pii'); audited."""
    from crmcore.cli.export import export_customers  # the database layer, on use only

    emit(
        export_customers(crm, path, fmt=fmt),
        as_json,
        lambda d: (
            f"exported {d['rows']} customers to {d['path']}"
            + ("" if d["personal_data"] else " (phones and e-mails masked)")
        ),
    )


@customer.command("timeline")
@click.argument("ref")
@click.option("--limit", type=Whole(1), help="Show the latest N entries (a page).")
@click.option("--cursor", help="Continue before the page that printed this cursor.")
@JSON_OPTION
@click.pass_context
def customer_timeline(
    ctx: click.Context, ref: str, as_json: bool, limit: int | None, cursor: str | None
) -> None:
    """Same as 'crm timeline REF'."""
    ctx.invoke(timeline, ref=ref, as_json=as_json, limit=limit, cursor=cursor)


@cli.command()
@click.argument("ref")
@click.option("--limit", type=Whole(1), help="Show the latest N entries (a page).")
@click.option("--cursor", help="Continue before the page that printed this cursor.")
@JSON_OPTION
@pass_crm
def timeline(
    crm: Any, ref: str, as_json: bool, limit: int | None = None, cursor: str | None = None
) -> None:
    """A customer's 360 timeline.

    Core and plugin records in time order. With --limit the latest N entries;
    the output then says how to read the N before them (--cursor). With --json
    a page is {"entries": [...], "next_cursor": ...}; without --limit and
    --cursor, the list of every entry."""
    page = crm.records.timeline(ref, limit=limit, cursor=cursor)
    entries = [e.to_json() for e in page]
    paged = limit is not None or cursor is not None
    data: Any = {"entries": entries, "next_cursor": page.next_cursor} if paged else entries

    def human(d: Any) -> str:
        lines = [
            f"{e['at'][:16].replace('T', ' ')}  {e['source']:<12} {e['kind']:<14} {e['summary']}"
            for e in (d["entries"] if paged else d)
        ] or ["no entries"]
        if page.next_cursor is not None:
            lines.append(f"earlier entries: the same command with --cursor {page.next_cursor}")
        return "\n".join(lines)

    emit(data, as_json, human)


# -- staff -------------------------------------------------------------------
