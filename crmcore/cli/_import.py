"""crm import customers|transactions FILE."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from crmcore.cli._app import JSON_OPTION, cli, emit, pass_crm
from crmcore.cli.params import Whole


@cli.group("import")
def import_() -> None:
    """Bulk import from CSV or JSON lines.

    Customers and transactions, from CSV or JSON lines."""


def _options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.argument("file", type=click.Path(dir_okay=False, allow_dash=False))(fn)
    fn = click.option(
        "--format",
        "fmt",
        type=click.Choice(["csv", "jsonl"]),
        help="Input format (default: from the file name; .jsonl/.ndjson -> jsonl).",
    )(fn)
    fn = click.option(
        "--skip-invalid",
        is_flag=True,
        help="Import the valid rows; refuse the invalid ones (see --rejects).",
    )(fn)
    fn = click.option(
        "--rejects",
        metavar="PATH",
        help="Write every refused row with its line number and reason to this new file.",
    )(fn)
    fn = click.option(
        "--force",
        is_flag=True,
        help="Replace the --rejects file if it exists.",
    )(fn)
    fn = click.option(
        "--batch-size",
        default=50_000,
        show_default=True,
        type=Whole(1, 10_000_000),
        help="Rows per batch (memory and hook granularity).",
    )(fn)
    return JSON_OPTION(fn)


@contextmanager
def _progress(size: int, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    if not enabled or not size or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=size, label="importing", file=sys.stderr) as bar:
        done = [0]

        def update(pos: int) -> None:
            bar.update(pos - done[0])
            done[0] = pos

        yield update


def _human(s: dict[str, Any]) -> str:
    parts = [f"imported {s['imported']} {s['kind']}"]
    if s["kind"] == "customers":
        parts.append(f"matched {s['matched']} existing")
    parts.append(f"{s['duplicates']} duplicates skipped")
    parts.append(f"{s['rejected']} rejected")
    lines = [", ".join(parts) + f" ({s['rows']} rows, {s['seconds']} s)"]
    lines += [f"  line {e['line']}: {e['message']}" for e in s["errors"][:20]]
    if s["rejected"] > 20:
        lines.append(f"  ... {s['rejected'] - 20} more")
    return "\n".join(lines)


def _run(
    crm: Any,
    kind: str,
    file: str,
    fmt: str | None,
    skip_invalid: bool,
    rejects: str | None,
    force: bool,
    batch_size: int,
    as_json: bool,
    **extra: Any,
) -> None:
    import os

    from crmcore.importer import ImportFailed, import_customers, import_transactions

    fn = import_customers if kind == "customers" else import_transactions
    try:
        size = os.path.getsize(file)
    except OSError:
        size = 0
    try:
        with _progress(size, not as_json) as progress:
            summary = fn(
                crm,
                file,
                fmt=fmt,
                skip_invalid=skip_invalid,
                rejects=rejects,
                replace_rejects=force,
                batch_size=batch_size,
                progress=progress,
                **extra,
            )
    except ImportFailed as e:
        if as_json:
            emit(e.summary, True)
        else:
            click.echo(_human(e.summary), err=True)
            click.echo(f"error: {e}", err=True)
        raise click.exceptions.Exit(1) from None
    emit(summary, as_json, _human)


@import_.command("customers")
@_options
@pass_crm
def import_customers_cmd(
    crm: Any,
    file: str,
    fmt: str | None,
    skip_invalid: bool,
    rejects: str | None,
    force: bool,
    batch_size: int,
    as_json: bool,
) -> None:
    """Import customers from a file.

    Import customers: columns external_id,name,phone,email plus declared attributes.

    A row whose external id, phone or e-mail already belongs to a customer is
    matched (counted), not created again. All-or-nothing unless --skip-invalid.
    """
    _run(crm, "customers", file, fmt, skip_invalid, rejects, force, batch_size, as_json)


@import_.command("transactions")
@_options
@click.option(
    "--allow-duplicates",
    is_flag=True,
    help="Import rows without a transaction id even if the same content was imported before.",
)
@pass_crm
def import_transactions_cmd(
    crm: Any,
    file: str,
    fmt: str | None,
    skip_invalid: bool,
    rejects: str | None,
    force: bool,
    batch_size: int,
    as_json: bool,
    allow_duplicates: bool,
) -> None:
    """Import purchases and refunds from a file.

    CSV or JSON lines.

    Columns: customer_external_id, occurred_at, amount, and optionally
    external_id, channel and kind (purchase, the default, or refund). Amounts
    are decimal text (12.34); a negative amount must have kind=refund.

    Re-importing is safe for rows with an external_id (the transaction id): an
    id already stored is a duplicate, skipped and counted. Rows without one
    cannot be told apart from new purchases, so the content of the file and of
    each batch of 1,000 rows is fingerprinted: a file, or part of one, that was
    already imported is refused with its line ranges and nothing is written,
    unless --allow-duplicates. All-or-nothing unless --skip-invalid.
    """
    _run(
        crm,
        "transactions",
        file,
        fmt,
        skip_invalid,
        rejects,
        force,
        batch_size,
        as_json,
        allow_duplicates=allow_duplicates,
    )
