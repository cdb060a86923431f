"""``crm staff`` (members, departures) and ``crm relationship`` (links between customers
and to staff)."""

from __future__ import annotations

from typing import Any

import click

from crmcore.cli._app import JSON_OPTION, cli, emit, pass_crm
from crmcore.cli.params import NUMBER_ARGUMENTS, PositiveInt


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
    s = crm.staff.add(key, name, roles=roles, team=team, supervisor=supervisor)
    emit(s, as_json, lambda s: f"added staff {s.key} ({s.name}), id {s.id}")


@staff.command("list")
@JSON_OPTION
@pass_crm
def staff_list(crm: Any, as_json: bool) -> None:
    """List staff."""
    emit(
        crm.staff.list(),
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
        crm.staff.leave(key, handover_to=handover_to),
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
    rel = crm.customers.add_relationship(kind, ref, to_customer=to_customer, to_staff=to_staff, note=note)
    emit(
        rel, as_json, lambda r: f"relationship {r.id}: {r.kind} from customer {r.from_customer_id}"
    )


@relationship.command("end", context_settings=NUMBER_ARGUMENTS)
@click.argument("rel_id", type=PositiveInt("relationship id"))
@JSON_OPTION
@pass_crm
def relationship_end(crm: Any, rel_id: int, as_json: bool) -> None:
    """End a relationship."""
    emit(crm.customers.end_relationship(rel_id), as_json, lambda r: f"relationship {r.id} ended")


@relationship.command("list")
@click.argument("ref")
@JSON_OPTION
@pass_crm
def relationship_list(crm: Any, ref: str, as_json: bool) -> None:
    """A customer's active relationships."""
    emit(
        crm.customers.relationships(ref),
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
