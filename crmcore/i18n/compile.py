"""Compile gettext catalogues: every ``locale/<LOCALE>/LC_MESSAGES/<domain>.po``
under the given directories (default: the crmcore package and, in a source
checkout, the bundled plugins) into the ``.mo`` beside it.

    python -m crmcore.i18n.compile [DIR ...]

Needs Babel (in the ``test`` extra): catalogues are compiled when they are
edited and the ``.mo`` files are shipped, so a deployment needs no compiler.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
CHECKOUT_PLUGINS = PACKAGE.parent / "plugins"


def default_roots() -> list[Path]:
    """The crmcore package, and the bundled plugins when run from a checkout."""
    return [PACKAGE, *([CHECKOUT_PLUGINS] if CHECKOUT_PLUGINS.is_dir() else [])]


def catalogues(roots: Iterable[Path]) -> Iterator[Path]:
    """Every ``.po`` file in a ``LC_MESSAGES`` directory below ``roots``."""
    for root in roots:
        yield from sorted(root.rglob("LC_MESSAGES/*.po"))


def compiled(po: Path) -> bytes:
    """The ``.mo`` bytes of ``po`` (fuzzy entries left out, as msgfmt does)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as f:
        catalog = read_po(f)
    out = io.BytesIO()
    write_mo(out, catalog)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    roots = [Path(a) for a in (sys.argv[1:] if argv is None else argv)] or default_roots()
    for po in catalogues(roots):
        mo = po.with_suffix(".mo")
        mo.write_bytes(compiled(po))
        print(f"compiled {mo}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
