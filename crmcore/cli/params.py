"""Command-line parameter types shared by the core's and the plugins' commands.

click reads any argument that starts with ``-`` as an option, so
``crm retail points redeem 1 -5`` failed with "No such option: -5". A command
with number arguments passes ``context_settings=NUMBER_ARGUMENTS`` so such a
value reaches its argument, and :class:`PositiveInt` says what is wrong with
it ("points must be positive").
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
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = int(str(value).strip())
            except ValueError:
                self.fail(f"{self.what} must be a whole number (got {value!r})", param, ctx)
        if number < 1:
            self.fail(f"{self.what} must be positive (got {number})", param, ctx)
        return number
