"""JSON Schema helpers: validate with defaults filled in, and one-line errors."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator, validators


def _extend_with_default(validator_class: type) -> type:
    # The jsonschema FAQ recipe: fill "default" values while validating.
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):  # type: ignore[no-untyped-def]
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


def describe(error: jsonschema.ValidationError) -> str:
    """'expected ...' text for an error, without dumping the whole schema."""
    v = error.validator
    if v == "type":
        return f"expected {error.validator_value}, got {error.instance!r}"
    if v == "enum":
        return f"expected one of {error.validator_value}, got {error.instance!r}"
    if v == "required":
        return error.message
    if v == "additionalProperties":
        return f"unknown key ({error.message})"
    return f"{error.message}"


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
