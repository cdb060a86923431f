"""crm customer / staff / relationship commands."""

from __future__ import annotations

from typing import Any

import click

from crmcore.cli._app import JSON_OPTION, cli, emit, pass_crm
from crmcore.cli.params import NUMBER_ARGUMENTS, PositiveInt, Whole


def customer_json(crm: Any, c: Any) -> dict[str, Any]:
    """A customer as output: personal data masked for principals without 'pii'."""
    from crmcore.masking import Masker

    attrs_ = Masker.for_crm(crm).attribute_values(c.attributes)
    return {
        "id": c.id,
        "external_id": c.external_id,
        "name": c.name,
        "kind": c.kind,
        "phone": crm.show_phone(c.phone),
        "email": crm.show_email(c.email),
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
        attributes[key.strip()] = crm.coerce_attribute(key.strip(), value)
    with crm.transaction():
        found = crm.match_customer(phone=phone, email=email, external_id=external_id)
        c = (
            found[0]
            if found
            else crm.add_customer(
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
        card = crm.card(ref, transactions_limit=10)
        data = customer_json(crm, card["customer"]) | {
            "labels": card["labels"],
            "stats": card["stats"],
            "recent_transactions": card["transactions"],
            "relationships": crm.relationships_of(ref),
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
    card = crm.till_lookup(phone, transactions_limit=limit)
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
        page = crm.list_customers(stage=stage, owner=owner, limit=limit, offset=offset)
        total = crm.count_customers(stage=stage, owner=owner)
        owners = {s.id: s.key for s in crm.list_staff()} if page else {}
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
    change = crm.change_stage(ref, stage, reason=reason)
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
            k: crm.coerce_attribute(k, v) for k, v in (a.split("=", 1) for a in attrs_)
        }
    with crm.transaction():
        data = customer_json(crm, crm.update_customer(ref, **changes))
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
        data = customer_json(crm, crm.merge_customers(keep, other))
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
        crm.forget_customer(ref),
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
    emit(
        crm.export_customers(path, fmt=fmt),
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
    page = crm.timeline(ref, limit=limit, cursor=cursor)
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
@cli.group()
def staff() -> None:
    """Members of staff.

    Add, list, leave (with handover)."""


@staff.command("add")
@click.argument("key")
@click.option("--name", required=True)
@click.option("--role", "roles", multiple=True, default=("rep",), show_default=True)
@click.option("--team")
@click.option("--supervisor", metavar="STAFF")
@JSON_OPTION
@pass_crm
def staff_add(
    crm: Any,
    key: str,
    name: str,
    roles: tuple[str, ...],
    team: str | None,
    supervisor: str | None,
    as_json: bool,
) -> None:
    """Add a member of staff.

    KEY is their login, e.g. 'alice'."""
    s = crm.add_staff(key, name, roles=roles, team=team, supervisor=supervisor)
    emit(s, as_json, lambda s: f"added staff {s.key} ({s.name}), id {s.id}")


@staff.command("list")
@JSON_OPTION
@pass_crm
def staff_list(crm: Any, as_json: bool) -> None:
    """List staff."""
    emit(
        crm.list_staff(),
        as_json,
        lambda ss: "\n".join(
            f"{s.id:>4}  {s.key:<12} {s.name:<20} {','.join(s.roles):<18} {s.team or '-':<10} "
            f"{'active' if s.active else 'left'}"
            for s in ss
        ),
    )


@staff.command("leave")
@click.argument("key")
@click.option(
    "--handover-to",
    metavar="STAFF",
    help="Default: their supervisor, else the least-loaded team member.",
)
@JSON_OPTION
@pass_crm
def staff_leave(crm: Any, key: str, handover_to: str | None, as_json: bool) -> None:
    """A member of staff leaves (with handover).

    Their access is revoked and everything handed over."""
    emit(
        crm.staff_leave(key, handover_to=handover_to),
        as_json,
        lambda d: (
            f"{d['staff']} left; handed to {d['handover_to']}: "
            + ", ".join(f"{n} {k}" for k, n in d["moved"].items())
        ),
    )


# -- relationships ------------------------------------------------------------
@cli.group()
def relationship() -> None:
    """Links between customers, or to staff.

    Typed and directed: customer to customer, or customer to staff."""


@relationship.command("add")
@click.argument("ref")
@click.option(
    "--kind",
    required=True,
    help="household, referral, company_contact, account_manager, agent, ...",
)
@click.option("--to-customer", metavar="REF")
@click.option("--to-staff", metavar="STAFF")
@click.option("--note")
@JSON_OPTION
@pass_crm
def relationship_add(
    crm: Any,
    ref: str,
    kind: str,
    to_customer: str | None,
    to_staff: str | None,
    note: str | None,
    as_json: bool,
) -> None:
    """Link customer REF to a customer or staff.

    Use --to-customer or --to-staff."""
    rel = crm.add_relationship(kind, ref, to_customer=to_customer, to_staff=to_staff, note=note)
    emit(
        rel, as_json, lambda r: f"relationship {r.id}: {r.kind} from customer {r.from_customer_id}"
    )


@relationship.command("end", context_settings=NUMBER_ARGUMENTS)
@click.argument("rel_id", type=PositiveInt("relationship id"))
@JSON_OPTION
@pass_crm
def relationship_end(crm: Any, rel_id: int, as_json: bool) -> None:
    """End a relationship."""
    emit(crm.end_relationship(rel_id), as_json, lambda r: f"relationship {r.id} ended")


@relationship.command("list")
@click.argument("ref")
@JSON_OPTION
@pass_crm
def relationship_list(crm: Any, ref: str, as_json: bool) -> None:
    """A customer's active relationships."""
    emit(
        crm.relationships_of(ref),
        as_json,
        lambda rs: (
            "\n".join(
                f"{r.id:>4}  {r.kind:<16} customer {r.from_customer_id} -> "
                + (f"customer {r.to_customer_id}" if r.to_customer_id else f"staff {r.to_staff_id}")
                for r in rs
            )
            or "no relationships"
        ),
    )
