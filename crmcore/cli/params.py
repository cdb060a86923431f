"""Command-line parameter types shared by the core's and the plugins' commands.

click reads any argument that starts with ``-`` as an option, so
``crm retail points redeem 1 -5`` failed with "No such option: -5". A command
with number arguments passes ``context_settings=NUMBER_ARGUMENTS`` so such a
value reaches its argument, and :class:`PositiveInt` says what is wrong with
it ("points must be positive"). :class:`Whole` and :class:`Number` check
options through :mod:`crmcore.parse` (64-bit, finite, within bounds).
"""

from __future__ import annotations

from typing import Any

import click

# Let "-5" through to the command's arguments instead of failing as an unknown option.
NUMBER_ARGUMENTS: dict[str, Any] = {"ignore_unknown_options": True}


class PositiveInt(click.ParamType):
    """A whole number of at least 1; ``what`` names it in the error
    (``PositiveInt("points")`` -> "points must be positive (got -5)")."""

    name = "integer"

    def __init__(self, what: str) -> None:
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        # bad input, not bad usage: one line and exit 1 (a CRMError), like every option
        from crmcore.errors import ValidationError
        from crmcore.parse import INT64

        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = int(str(value).strip())
            except ValueError:
                raise ValidationError(f"{self.what} must be a whole number (got {value!r})") from None
        if number < 1:
            raise ValidationError(f"{self.what} must be positive (got {number})")
        if number > INT64[1]:
            raise ValidationError(f"{self.what}: {number} is out of range (1 to {INT64[1]})")
        return number


def _option_name(param: click.Parameter | None) -> str:
    if param is None:
        return "value"
    longest = max(getattr(param, "opts", None) or [param.human_readable_name], key=len)
    return longest if longest.startswith("-") else longest.upper()


class Whole(click.ParamType):
    """A whole-number option or argument, checked by :func:`crmcore.parse.parse_int`
    (64-bit, within ``min`` .. ``max``): bad input is a one-line error naming it."""

    name = "integer"

    def __init__(self, min: int | None = None, max: int | None = None) -> None:
        self.min, self.max = min, max

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        from crmcore.parse import parse_int

        return parse_int(value, field=_option_name(param), min=self.min, max=self.max)


class Number(click.ParamType):
    """A finite decimal-number option (:func:`crmcore.parse.parse_number`)."""

    name = "number"

    def __init__(self, min: float | None = None, max: float | None = None) -> None:
        self.min, self.max = min, max

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        from crmcore.parse import parse_number

        return parse_number(value, field=_option_name(param), min=self.min, max=self.max)
