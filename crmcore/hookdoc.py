"""Generate the hook reference (docs/hooks.md) from the hook specs' docstrings.

``python -m crmcore.hookdoc > docs/hooks.md``; a test fails when the file is stale.
"""

from __future__ import annotations

import inspect

from crmcore.hooks import SPEC_MODULES


def render() -> str:
    out = [
        "# Hook reference",
        "",
        "Generated from `crmcore/hooks/*.py` by `python -m crmcore.hookdoc > docs/hooks.md`;",
        "do not edit by hand. Implement a hook with `from crmcore import hookimpl`; the",
        "parameter names must match, and you may accept only the ones you need.",
        "",
    ]
    for module in SPEC_MODULES:
        group = module.__name__.rsplit(".", 1)[-1]
        out += [f"## {group}", "", inspect.getdoc(module) or "", ""]
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if not name.startswith("crm_") or fn.__module__ != module.__name__:
                continue
            sig = str(inspect.signature(fn)).replace("'", "")
            out += [f"### `{name}{sig}`", "", inspect.getdoc(fn) or "(undocumented)", ""]
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
