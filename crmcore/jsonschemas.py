"""JSON Schema helpers: validate with defaults filled in, and one-line errors."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator, validators


def _extend_with_default(validator_class: Any) -> Any:
    # The jsonschema FAQ recipe: fill "default" values while validating.
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(
        validator: Any, properties: dict[str, Any], instance: Any, schema: dict[str, Any]
    ) -> Iterator[Any]:
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


DefaultingValidator = _extend_with_default(Draft202012Validator)


def key_path(error: jsonschema.ValidationError, prefix: str = "") -> str:
    parts = [prefix] if prefix else []
    parts += [str(p) for p in error.absolute_path]
    return ".".join(parts) or "(top level)"


_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "an array",
    "object": "a table",
    "null": "nothing",
}


def _bounds(schema: dict[str, Any]) -> str:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" >= {low}" if "minimum" in schema else f" > {low}"
    if high is not None:
        return f" <= {high}" if "maximum" in schema else f" < {high}"
    return ""


def allowed(schema: Any) -> str | None:
    """What ``schema`` accepts, in words (``one of [...]``, ``an integer from 1 to
    31``, ...), or ``None`` when it is too intricate to say in a phrase."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return repr(schema["const"])
    if "enum" in schema:
        return f"one of {list(schema['enum'])}"
    for combinator in ("oneOf", "anyOf"):
        if combinator in schema:
            parts = [allowed(sub) for sub in schema[combinator]]
            return None if None in parts else " or ".join(p for p in parts if p)
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(_TYPE_NAMES.get(k, str(k)) for k in kind)
    if isinstance(kind, str):
        text = _TYPE_NAMES.get(kind, kind) + (
            _bounds(schema) if kind in ("integer", "number") else ""
        )
        if kind == "string" and "pattern" in schema:
            text += f" matching {schema['pattern']}"
        if kind == "object" and schema.get("properties"):
            text += f" of {', '.join(schema['properties'])}"
        return text
    return None


def _alternatives(error: jsonschema.ValidationError) -> str:
    """The message of a failed ``oneOf``/``anyOf``: what each alternative allows."""
    subs = error.validator_value
    if all(isinstance(s, dict) and set(s) == {"required"} for s in subs):
        keys = [k for s in subs for k in s["required"]]
        return f"expected at least one of the keys {', '.join(keys)}"
    if "is valid under each of" in error.message:  # oneOf: more than one alternative fits
        return f"{error.instance!r} matches more than one alternative; make it unambiguous"
    parts = [allowed(s) for s in subs]
    if None not in parts:
        return f"expected {' or '.join(p for p in parts if p)}, got {error.instance!r}"
    best = jsonschema.exceptions.best_match(error.context or ())
    if best is not None:  # an alternative too intricate to name: its most relevant error
        return describe(best)
    return f"{error.instance!r} is not allowed here"


def describe(error: jsonschema.ValidationError) -> str:
    """'expected ...' text for an error, without dumping the whole schema: what is
    allowed and what was given."""
    v = error.validator
    if v == "type":
        return f"expected {error.validator_value}, got {error.instance!r}"
    if v == "enum":
        return f"expected one of {list(error.validator_value)}, got {error.instance!r}"
    if v == "const":
        return f"expected {error.validator_value!r}, got {error.instance!r}"
    if v in ("oneOf", "anyOf"):
        return _alternatives(error)
    if v == "required" and isinstance(error.instance, dict):
        absent = [k for k in error.validator_value if k not in error.instance]
        return f"missing key {', '.join(map(repr, absent))}"
    if v == "additionalProperties" and isinstance(error.instance, dict):
        known = list((error.schema.get("properties") or {}).keys())
        extra = sorted(k for k in error.instance if k not in known)
        text = f"unknown key {', '.join(map(repr, extra))}"
        return text + (f"; known keys: {', '.join(known)}" if known else "")
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = {
            "minimum": ">=",
            "maximum": "<=",
            "exclusiveMinimum": ">",
            "exclusiveMaximum": "<",
        }[v]
        return f"expected a number {bound} {error.validator_value}, got {error.instance!r}"
    if v == "pattern":
        return f"expected text matching {error.validator_value}, got {error.instance!r}"
    return f"{error.message}"


def _entry_names(items: list[Any]) -> list[str]:
    return [i["name"] for i in items if isinstance(i, dict) and "name" in i]


def dropped_defaults(instance: Any, schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Where a given list replaced a default list of named entries, one line per
    list naming the default entries that are gone (the list replaces, it does not
    extend). Looks through nested tables of ``properties``."""
    notes: list[str] = []
    if not isinstance(instance, dict) or not isinstance(schema, dict):
        return notes
    for key, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, dict) or key not in instance:
            continue
        where = f"{prefix}.{key}" if prefix else key
        default, given = sub.get("default"), instance[key]
        if isinstance(default, list) and isinstance(given, list):
            kept = set(_entry_names(given))
            gone = [n for n in _entry_names(default) if n not in kept]
            if gone:
                notes.append(
                    f"{where} replaces the default list; no longer used: {', '.join(gone)} "
                    "(list them too to keep them)"
                )
        elif sub.get("type") == "object":
            notes.extend(dropped_defaults(given, sub, where))
    return notes


def validate(
    instance: Any, schema: dict[str, Any], *, where: str, prefix: str = "", defaults: bool = True
) -> Any:
    """Validate ``instance`` (filling defaults into a copy); return the copy.

    Raises ValueError with 'WHERE: KEY: expected ...' for the first error.
    """
    data = copy.deepcopy(instance)
    cls = DefaultingValidator if defaults else Draft202012Validator
    errors = sorted(cls(schema).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        raise ValueError(f"{where}: {key_path(err, prefix)}: {describe(err)}")
    return data
