"""The hook reference is generated from the specs and kept current; every hook is tested."""

from __future__ import annotations

import inspect
from pathlib import Path

from crmcore.hookdoc import render
from crmcore.hooks import SPEC_MODULES

ROOT = Path(__file__).resolve().parents[1]


def all_hooks() -> list[str]:
    return [
        name
        for m in SPEC_MODULES
        for name, fn in inspect.getmembers(m, inspect.isfunction)
        if name.startswith("crm_") and fn.__module__ == m.__name__
    ]


def test_docs_hooks_md_is_current():
    assert (ROOT / "docs" / "hooks.md").read_text() == render(), (
        "docs/hooks.md is stale: run python -m crmcore.hookdoc > docs/hooks.md"
    )


def test_every_hook_documents_its_arguments_and_timing():
    for module in SPEC_MODULES:
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("crm_") and fn.__module__ == module.__name__:
                doc = inspect.getdoc(fn) or ""
                assert len(doc) > 60, name
                for param in inspect.signature(fn).parameters:
                    assert param in doc or param in ("crm",), (name, param)


def test_every_hook_is_exercised_by_some_test():
    sources = "".join(
        p.read_text()
        for p in [
            *ROOT.glob("tests/**/*.py"),
            *ROOT.glob("plugins/*/tests/**/*.py"),
            *ROOT.glob("plugins/*/crm_*/**/*.py"),
        ]
    )
    missing = [h for h in all_hooks() if f"def {h}(" not in sources]
    assert missing == []
