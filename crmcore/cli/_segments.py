"""crm segment: saved, named customer filters (see crmcore.segments)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from crmcore.cli._app import JSON_OPTION, cli, emit, parse_at, pass_crm
from crmcore.cli.params import Whole
from crmcore.errors import CRMError, ValidationError


@cli.group()
def segment() -> None:
    """Saved customer filters and their members."""


def _conditions(where: str | None, file: str | None) -> Any:
    from crmcore.segments import parse_conditions

    if (where is None) == (file is None):
        raise ValidationError(
            "segment add: give the conditions with exactly one of --where, --file"
        )
    if file is not None:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise CRMError(f"--file {file}: cannot read it: {e}") from None
        return parse_conditions(text, where=f"--file {file}")
    assert where is not None
    return parse_conditions(where)


def _segment_line(s: dict[str, Any]) -> str:
    return f"{s['name']}  {s['description'] or ''}  {s['conditions']}".rstrip()


def _member_line(m: dict[str, Any]) -> str:
    contact = " ".join(x for x in (m["phone"], m["email"]) if x)
    return f"{m['id']:>6}  {m['name']}  [{m['stage']}]  {contact}"


@segment.command("add")
@click.argument("name")
@click.option("--where", help="The conditions, a JSON document.")
@click.option("--file", type=click.Path(dir_okay=False), help="A file holding the conditions.")
@click.option("--description", default="")
@JSON_OPTION
@pass_crm
def segment_add(
    crm: Any, name: str, where: str | None, file: str | None, description: str, as_json: bool
) -> None:
    """Save segment NAME.

    The conditions are a JSON document (see docs/segments.md)."""
    from crmcore.segments import add_segment

    saved = add_segment(crm, name, _conditions(where, file), description=description)
    emit(saved, as_json, lambda s: f"segment {s['name']} saved")


@segment.command("list")
@JSON_OPTION
@pass_crm
def segment_list(crm: Any, as_json: bool) -> None:
    """Every saved segment."""
    from crmcore.segments import list_segments

    rows = list_segments(crm)
    emit(rows, as_json, lambda r: "\n".join(_segment_line(s) for s in r) or "no segments")


@segment.command("show")
@click.argument("name")
@JSON_OPTION
@pass_crm
def segment_show(crm: Any, name: str, as_json: bool) -> None:
    """One segment's conditions."""
    from crmcore.segments import show_segment

    emit(show_segment(crm, name), as_json, _segment_line)


@segment.command("count")
@click.argument("name")
@click.option("--at", help="The moment recency and plugin conditions count from.")
@JSON_OPTION
@pass_crm
def segment_count(crm: Any, name: str, at: str | None, as_json: bool) -> None:
    """Count the members you may see."""
    from crmcore.segments import count_members

    n = count_members(crm, name, at=parse_at(at))
    emit({"segment": name, "count": n}, as_json, lambda d: str(d["count"]))


@segment.command("members")
@click.argument("name")
@click.option("--limit", type=Whole(1), default=100, show_default=True)
@click.option("--at", help="The moment recency and plugin conditions count from.")
@JSON_OPTION
@pass_crm
def segment_members_cmd(crm: Any, name: str, limit: int, at: str | None, as_json: bool) -> None:
    """The segment's members you may see, by id."""
    from crmcore.segments import segment_members

    rows = segment_members(crm, name, limit=limit, at=parse_at(at))
    emit(rows, as_json, lambda r: "\n".join(_member_line(m) for m in r) or "no members")


@segment.command("export")
@click.argument("name")
@click.argument("path")
@click.option("--at", help="The moment recency and plugin conditions count from.")
@JSON_OPTION
@pass_crm
def segment_export(crm: Any, name: str, path: str, at: str | None, as_json: bool) -> None:
    """Write the members to PATH (CSV).

    A new private file; needs the 'export' permission."""
    from crmcore.segments import export_members

    done = export_members(crm, name, path, at=parse_at(at))
    emit(done, as_json, lambda d: f"{d['rows']} members written to {d['path']}")


@segment.command("remove")
@click.argument("name")
@JSON_OPTION
@pass_crm
def segment_remove(crm: Any, name: str, as_json: bool) -> None:
    """Delete a segment no campaign uses."""
    from crmcore.segments import remove_segment

    emit(remove_segment(crm, name), as_json, lambda d: f"segment {d['removed']} removed")
