"""The bundled plugins declare HTTP routes, yet load without the web framework:
``crm plugins list`` with all of them enabled imports no FastAPI and no plugin's
``api`` module (they are imported only when the web application is built)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_startup import imported_by

from crmcore import plugins as plugins_mod

SHIPPED = ("retail", "utility", "insurance", "real_estate")


def test_plugins_list_imports_neither_fastapi_nor_a_plugins_routes(tmp_path: Path) -> None:
    installed = [n for n in SHIPPED if n in plugins_mod.installed()]
    if not installed:
        pytest.skip("none of the bundled plugins is installed")
    (tmp_path / "crm.toml").write_text(
        "[crm]\nplugins = [" + ", ".join(f'"{n}"' for n in installed) + "]\n", encoding="utf-8"
    )
    proc, modules = imported_by(["plugins", "list", "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert all(f'"{n}"' in proc.stdout for n in installed)
    tops = {m.split(".")[0] for m in modules}
    assert any(t.startswith("crm_") for t in tops)  # the plugins were loaded
    assert not tops & {"fastapi", "starlette", "pydantic"}
    assert not [m for m in modules if m.endswith(".api") and m.startswith("crm_")]
