"""Presentation the command line and the HTTP API share: what a principal may see
of a value, and text input turned into the declared types.

The services return data as stored; whoever shows it to a person masks it
here, by the acting principal's permissions.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from crmcore.contacts import mask_email, mask_id_number, mask_phone
from crmcore.errors import ValidationError
from crmcore.parse import clean_text, parse_int, parse_number

if TYPE_CHECKING:
    from crmcore.service import CRM


def show_phone(crm: CRM, value: str | None) -> str | None:
    """A phone number as the acting principal may see it (masked without 'pii')."""
    return value if crm.may_see_pii() else mask_phone(value)


def show_email(crm: CRM, value: str | None) -> str | None:
    """An e-mail address as the acting principal may see it (masked without 'pii')."""
    return value if crm.may_see_pii() else mask_email(value)


def show_id_number(crm: CRM, value: str | None) -> str | None:
    """An identity number as the acting principal may see it (masked without 'pii')."""
    return value if crm.may_see_pii() else mask_id_number(value)


def coerce_attribute(crm: CRM, name: str, text: str) -> Any:
    """Turn ``--attr name=text`` (the CLI's, an HTTP query's) into the attribute's declared type."""
    declared = crm.plugins.declared.get("attribute", {})
    if name not in declared:
        names = ", ".join(sorted(declared)) or "(none)"
        raise ValidationError(f"attribute {name!r} is not declared; declared: {names}")
    kind = declared[name].schema.get("type")
    field = f"attribute {name}"
    if kind == "integer":
        return parse_int(text, field=field)
    if kind == "number":
        return parse_number(text, field=field)
    try:
        if kind == "boolean":
            if text.lower() in {"true", "yes", "1"}:
                return True
            if text.lower() in {"false", "no", "0"}:
                return False
            raise ValueError
    except ValueError:
        raise ValidationError(f"attribute {name}: {text!r} is not a valid {kind}") from None
    if kind in ("array", "object"):
        try:
            return json.loads(text, parse_constant=_no_json_constant)
        except ValueError:  # not JSON, or NaN/Infinity
            raise ValidationError(f"attribute {name}: {text!r} is not JSON") from None
    return clean_text(text, field=field, multiline=True)


def _no_json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")
