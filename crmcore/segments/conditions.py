"""A segment's conditions: a JSON document, validated, compiled to one clause.

A condition is an object with exactly one key:

- ``{"all": [c, ...]}``, ``{"any": [c, ...]}``, ``{"not": c}``;
- ``{"stage": ["new", "stable"]}``; ``{"owner": ["zhang"]}`` (staff keys);
  ``{"team": ["north"]}`` (the owner's team);
- ``{"label": {"name": "abc", "in": ["A", "B"]}}``;
- ``{"attribute": {"name": "city", "equals": "Shanghai"}}`` (a declared
  attribute; also ``"in": [...]``, or ``"min"`` / ``"max"`` for numbers);
- ``{"spend": {"min": 10000}}`` (cents, from customer_stats), ``{"frequency":
  {"min": 2}}`` (purchases), ``{"recency_days": {"max": 30}}`` (days since the
  last purchase; a customer without one matches no recency);
- ``{"consent": "sms"}`` or ``"email"``;
- ``{"relationship": {"kind": "referral", "role": "from"}}`` (an active
  relationship of that kind; ``role`` ``from``, ``to`` or ``any``);
- ``{"<plugin>.<name>": {...}}``: a plugin's condition
  (:class:`SegmentCondition`, from ``crm_segment_conditions``), its parameters
  checked against the condition's own schema.

Each compiles to a SQLAlchemy clause on :data:`crmcore.schema.live_customers`;
plugin conditions and the stats, labels and relationships are ``IN`` subqueries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import jsonschema
from sqlalchemy import ColumnElement, and_, not_, or_, select, true

from crmcore.errors import ValidationError
from crmcore.schema import customer_labels, customer_stats, live_customers, relationships, staff

MAX_DEPTH = 8
_RANGE = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}},
}
_KEYS = {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}}
BUILTIN_SCHEMAS: dict[str, dict[str, Any]] = {
    "stage": _KEYS,
    "owner": _KEYS,
    "team": _KEYS,
    "label": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "in"],
        "properties": {"name": {"type": "string", "minLength": 1}, "in": _KEYS},
    },
    "attribute": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "minProperties": 2,
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "equals": {"type": ["string", "number", "boolean"]},
            "in": {"type": "array", "minItems": 1, "items": {"type": ["string", "number"]}},
            "min": {"type": "number"},
            "max": {"type": "number"},
        },
    },
    "spend": _RANGE,
    "frequency": _RANGE,
    "recency_days": _RANGE,
    "consent": {"enum": ["sms", "email"]},
    "relationship": {
        "type": "object",
        "additionalProperties": False,
        "required": ["kind"],
        "properties": {
            "kind": {"type": "string", "minLength": 1},
            "role": {"enum": ["from", "to", "any"]},
        },
    },
}


@attrs.frozen(kw_only=True)
class SegmentCondition:
    """A condition a plugin offers to segments.

    :param name: ``<plugin>.<name>``, the key it is written under in a segment.
    :param schema: the JSON schema of its parameters (an object).
    :param compile: ``(crm, params, customer_id, as_of) -> clause``: the clause
        keeping the customers whose id (the column ``customer_id``) matches,
        as of ``as_of`` (the segment's moment: ``crm.now()`` or ``--at``).
    :param description: one line for ``crm segment conditions``.
    """

    name: str
    schema: Mapping[str, Any]
    compile: Callable[[Any, Mapping[str, Any], Any, dt.datetime], Any]
    description: str = ""


def plugin_conditions(crm: Any) -> dict[str, SegmentCondition]:
    """The enabled plugins' conditions by name; a name must start with its plugin's."""
    found: dict[str, SegmentCondition] = {}
    for owner, conds in crm.plugins.each("crm_segment_conditions"):
        for cond in conds or ():
            if not isinstance(cond, SegmentCondition) or not cond.name.startswith(owner + "."):
                raise ValidationError(
                    f"plugin {owner}: crm_segment_conditions must return SegmentCondition "
                    f"objects named '{owner}.<name>'"
                )
            found[cond.name] = cond
    return found


def _schema_error(where: str, params: Any, schema: Mapping[str, Any]) -> None:
    try:
        jsonschema.validate(params, schema)
    except jsonschema.ValidationError as e:
        path = "".join(f"[{p!r}]" for p in e.absolute_path)
        raise ValidationError(f"segment condition {where}{path}: {e.message}") from None


def validate(crm: Any, doc: Any, *, where: str = "$", depth: int = 0) -> None:
    """Refuse (one line naming the place) a document that is not a condition."""
    if depth > MAX_DEPTH:
        raise ValidationError(f"segment condition {where}: nested deeper than {MAX_DEPTH}")
    if not isinstance(doc, dict) or len(doc) != 1:
        raise ValidationError(
            f"segment condition {where}: expected an object with exactly one key "
            f"(all, any, not, {', '.join(BUILTIN_SCHEMAS)} or a plugin's condition)"
        )
    ((key, value),) = doc.items()
    here = f"{where}.{key}"
    if key in ("all", "any"):
        if not isinstance(value, list) or not value:
            raise ValidationError(f"segment condition {here}: expected a non-empty list")
        for i, part in enumerate(value):
            validate(crm, part, where=f"{here}[{i}]", depth=depth + 1)
    elif key == "not":
        validate(crm, value, where=here, depth=depth + 1)
    elif key in BUILTIN_SCHEMAS:
        _schema_error(here, value, BUILTIN_SCHEMAS[key])
        _check_names(crm, key, value, here)
    else:
        cond = plugin_conditions(crm).get(key)
        if cond is None:
            raise ValidationError(
                f"segment condition {where}: unknown condition {key!r}; known: "
                f"all, any, not, {', '.join([*BUILTIN_SCHEMAS, *plugin_conditions(crm)])}"
            )
        _schema_error(here, value, cond.schema)


def _check_names(crm: Any, key: str, value: Any, where: str) -> None:
    """Stages, staff and attributes named by a condition must exist."""
    if key == "stage":
        stages = crm.config.core["lifecycle"]["stages"]
        unknown = [s for s in value if s not in stages]
        if unknown:
            raise ValidationError(f"segment condition {where}: stage(s) {unknown} not configured")
    elif key == "owner":
        for ref in value:
            crm.staff.get(ref)
    elif key == "attribute":
        declared = crm.plugins.declared.get("attribute", {})
        if value["name"] not in declared:
            raise ValidationError(
                f"segment condition {where}: attribute {value['name']!r} is not declared; "
                f"declared: {sorted(declared)}"
            )


def compile_condition(crm: Any, doc: Mapping[str, Any], as_of: dt.datetime) -> ColumnElement:
    """The clause on ``live_customers`` of a validated condition document."""
    lc = live_customers.c
    ((key, value),) = doc.items()
    if key == "all":
        return and_(true(), *(compile_condition(crm, d, as_of) for d in value))
    if key == "any":
        return or_(*(compile_condition(crm, d, as_of) for d in value))
    if key == "not":
        return not_(compile_condition(crm, value, as_of))
    if key == "stage":
        return lc.stage.in_(value)
    if key == "owner":
        return lc.owner_id.in_([crm.staff.get(ref).id for ref in value])
    if key == "team":
        return lc.owner_id.in_(select(staff.c.id).where(staff.c.team.in_(value)))
    if key == "label":
        return lc.id.in_(
            select(customer_labels.c.customer_id).where(
                customer_labels.c.name == value["name"], customer_labels.c.value.in_(value["in"])
            )
        )
    if key == "attribute":
        return _attribute(value)
    if key in ("spend", "frequency", "recency_days"):
        return lc.id.in_(select(customer_stats.c.customer_id).where(*_stats(key, value, as_of)))
    if key == "consent":
        return (lc.consent_sms if value == "sms" else lc.consent_email).is_(True)
    if key == "relationship":
        return _relationship(value)
    cond = plugin_conditions(crm)[key]
    return cond.compile(crm, value, lc.id, as_of)


def _attribute(value: Mapping[str, Any]) -> ColumnElement:
    field = live_customers.c.attributes[value["name"]]
    parts: list[ColumnElement] = []
    if "equals" in value:
        v = value["equals"]
        if isinstance(v, bool):
            parts.append(field.as_boolean() == v)
        elif isinstance(v, int | float):
            parts.append(field.as_float() == v)
        else:
            parts.append(field.as_string() == v)
    if "in" in value:
        texts = [v for v in value["in"] if isinstance(v, str)]
        numbers = [v for v in value["in"] if not isinstance(v, str)]
        options = []
        if texts:
            options.append(field.as_string().in_(texts))
        if numbers:
            options.append(field.as_float().in_(numbers))
        parts.append(or_(*options))
    if "min" in value:
        parts.append(field.as_float() >= value["min"])
    if "max" in value:
        parts.append(field.as_float() <= value["max"])
    return and_(*parts)


def _stats(key: str, value: Mapping[str, Any], as_of: dt.datetime) -> list[ColumnElement]:
    if key == "recency_days":
        # at most N days since the last purchase: last_at at or after as_of - N days
        out = []
        if "max" in value:
            out.append(customer_stats.c.last_at >= as_of - dt.timedelta(days=value["max"]))
        if "min" in value:
            out.append(customer_stats.c.last_at <= as_of - dt.timedelta(days=value["min"]))
        return out
    col = customer_stats.c.spend_cents if key == "spend" else customer_stats.c.tx_count
    out = []
    if "min" in value:
        out.append(col >= value["min"])
    if "max" in value:
        out.append(col <= value["max"])
    return out


def _relationship(value: Mapping[str, Any]) -> ColumnElement:
    role = value.get("role", "any")
    active = and_(relationships.c.kind == value["kind"], relationships.c.active.is_(True))
    parts = []
    if role in ("from", "any"):
        parts.append(
            live_customers.c.id.in_(select(relationships.c.from_customer_id).where(active))
        )
    if role in ("to", "any"):
        parts.append(
            live_customers.c.id.in_(
                select(relationships.c.to_customer_id).where(
                    active, relationships.c.to_customer_id.is_not(None)
                )
            )
        )
    return or_(*parts)
