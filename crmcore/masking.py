"""Masking personal data for principals without the ``pii`` permission.

What is personal is declared, never guessed from values:

- a column of a core or plugin table is personal when its ``info`` says so:
  ``Column("phone", ..., info={"pii": "phone"})``. The value names how it is
  masked: ``"phone"`` (``+86138****5678``), ``"email"`` (``a***@example.cn``),
  ``"id_number"`` (``110****1234``), ``"contact"`` (a phone or an e-mail
  address, masked as what it is) or ``True`` (the whole value becomes ``****``);
- a customer attribute is personal when its plugin declares it with
  ``Attribute(..., pii=True)`` (masked as ``****``).

:class:`Masker` applies that to what the CLI prints: every output, through
:func:`crmcore.cli.emit` (keys named like a personal column or attribute), and
the audit trail's before/after values (by the table each row is about). Masking
is idempotent: a masked value masks to itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from sqlalchemy import Table

from crmcore.contacts import mask_email, mask_id_number, mask_phone
from crmcore.errors import PluginError

PII_KEY = "pii"
"""The ``Column.info`` key that marks a column personal."""

HIDDEN = "****"
KINDS = ("phone", "email", "id_number", "contact")


def pii_kind(column: Any) -> str | bool | None:
    """How a column is masked (None: it is not personal)."""
    info = getattr(column, "info", None) or {}
    kind = info.get(PII_KEY)
    if kind is None or kind is False:
        return None
    if kind is True or kind in KINDS:
        return kind
    raise PluginError(
        f"column {column}: info['pii'] = {kind!r}; expected True or one of {list(KINDS)}"
    )


def mask(value: Any, kind: str | bool = True) -> Any:
    """``value`` masked as ``kind`` (see the module's docstring); empty stays empty."""
    if value is None or value == "":
        return value
    if isinstance(value, Mapping | list | tuple):
        return HIDDEN if value else value
    text = str(value)
    if kind == "contact":
        kind = "email" if "@" in text else "phone"
    if kind == "phone":
        return mask_phone(text)
    if kind == "email":
        return mask_email(text)
    if kind == "id_number":
        return mask_id_number(text)
    return HIDDEN


def personal_columns(tables: Iterable[Table]) -> dict[str, dict[str, str | bool]]:
    """Table name -> {column name: kind} of the personal columns of ``tables``."""
    out: dict[str, dict[str, str | bool]] = {}
    for table in tables:
        cols = {c.name: k for c in table.columns if (k := pii_kind(c)) is not None}
        if cols:
            out[table.name] = cols
    return out


class Masker:
    """Masks what one principal is shown. ``active`` is False for principals
    with ``pii``: then every method returns its input unchanged."""

    def __init__(
        self,
        tables: Iterable[Table],
        pii_attributes: Iterable[str],
        *,
        active: bool,
    ) -> None:
        tables = list(tables)
        self.active = active
        self.columns = personal_columns(tables)
        self.attributes = frozenset(pii_attributes)
        # a key masks in any output when every column of that name is personal
        # (so "phone" does, while "value" of contact points does only in their rows)
        kinds: dict[str, set[Any]] = {}
        plain: set[str] = set()
        for table in tables:
            for column in table.columns:
                kind = pii_kind(column)
                if kind is None:
                    plain.add(column.name)
                else:
                    kinds.setdefault(column.name, set()).add(kind)
        self.keys: dict[str, str | bool] = {
            name: (next(iter(k)) if len(k) == 1 else True)
            for name, k in kinds.items()
            if name not in plain
        }
        for name in self.attributes:
            self.keys.setdefault(name, True)

    @classmethod
    def for_crm(cls, crm: Any) -> Masker:
        """The masker of the CRM's acting principal, over the core's tables and
        the enabled plugins' tables and attributes."""
        from crmcore.schema import metadata

        declared = crm.plugins.declared
        tables = list(metadata.tables.values())
        tables += [t for t in declared.get("table", {}).values() if t is not None]
        attributes = [a.name for a in declared.get("attribute", {}).values() if a.pii]
        from crmcore.errors import CRMError

        try:
            active = not crm.may_see_pii()
        except CRMError:  # no such principal (yet: `db upgrade` of a new database)
            active = True
        return cls(tables, attributes, active=active)

    # -- rows of one table ----------------------------------------------------
    def row(self, table: str, values: Mapping[str, Any] | None) -> Any:
        """One row (or the changed columns of one) of ``table``, masked."""
        if not self.active or not isinstance(values, Mapping):
            return values
        personal = self.columns.get(table, {})
        out: dict[str, Any] = {}
        for key, value in values.items():
            if key in personal:
                out[key] = mask(value, personal[key])
            elif key == "attributes" and isinstance(value, Mapping):
                out[key] = self.attribute_values(value)
            else:
                out[key] = value
        return out

    def attribute_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A customer's attribute document with the personal attributes masked."""
        if not self.active:
            return dict(values)
        return {k: (mask(v) if k in self.attributes else v) for k, v in values.items()}

    def audit_row(self, row: Mapping[Any, Any]) -> dict[str, Any]:
        """An audit row with its recorded values masked by the table it is about."""
        out = dict(row)
        if self.active:
            out["before"] = self.row(row["entity"], row.get("before"))
            out["after"] = self.row(row["entity"], row.get("after"))
        return out

    # -- any output --------------------------------------------------------------
    def output(self, value: Any) -> Any:
        """``value`` (what a command prints: dicts, lists, entities) with every
        key named like a personal column or attribute masked; types are kept
        (entities stay entities, with masked fields)."""
        if not self.active:
            return value
        return self._walk(value)

    def _walk(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: self._field(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v) for v in value]
        if isinstance(value, tuple) and not hasattr(value, "_fields"):
            return tuple(self._walk(v) for v in value)
        if attrs.has(type(value)):
            changes = {}
            for field in attrs.fields(type(value)):
                if not field.init:
                    continue
                old = getattr(value, field.name)
                new = self._field(field.name, old)
                if new is not old:
                    changes[field.alias or field.name] = new
            return attrs.evolve(value, **changes) if changes else value
        return value

    def _field(self, key: Any, value: Any) -> Any:
        kind = self.keys.get(str(key))
        if kind is not None:
            return mask(value, kind)
        return self._walk(value)
