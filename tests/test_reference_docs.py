"""The API reference (docs/reference/) is generated from the docstrings and kept
current; the registration objects' examples run."""

from __future__ import annotations

import doctest
import importlib
import inspect
from pathlib import Path

import pytest

import crmcore
import crmcore.entities
import crmcore.registry
from crmcore import refdoc

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"


def test_docs_reference_is_current():
    pages = refdoc.pages()
    on_disk = {p.name for p in REFERENCE.glob("*.md")}
    assert on_disk == set(pages), "docs/reference/ has other files than the generator writes"
    stale = [name for name, text in pages.items() if (REFERENCE / name).read_text() != text]
    assert stale == [], f"docs/reference/{stale} stale: run python -m crmcore.refdoc"


def test_check_mode_reports_a_stale_folder(tmp_path, capsys):
    assert refdoc.main(["--dir", str(tmp_path), "--check"]) == 1
    assert "stale" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # --check writes nothing
    assert refdoc.main(["--dir", str(tmp_path)]) == 0
    assert refdoc.main(["--dir", str(tmp_path), "--check"]) == 0


def test_a_folder_that_cannot_be_written_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert refdoc.main(["--dir", str(blocker / "reference")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_every_public_crm_method_is_documented_with_its_signature():
    from crmcore.service import CRM
    from crmcore.services.base import Service

    page = refdoc.crm_page()
    for prefix, cls in [("crm", CRM), *((f"crm.{a}", c) for a, c in CRM.SERVICES.items())]:
        for name in dir(cls):
            if name.startswith("_") or (prefix != "crm" and name in vars(Service)):
                continue  # a service's db, hook, now...: the facade's, documented there
            member = inspect.getattr_static(cls, name)
            if inspect.isfunction(member) or isinstance(member, property | classmethod):
                assert f".{name}" in page, name
            if inspect.isfunction(member) and prefix != "crm":
                assert f"`{prefix}.{name}(" in page, f"{prefix}.{name}"
    assert "(undocumented)" not in page


@pytest.mark.parametrize("page", sorted(refdoc.pages()))
def test_no_page_has_undocumented_entries(page):
    assert "(undocumented)" not in refdoc.pages()[page]


def test_the_fixtures_are_listed():
    page = refdoc.testing_page()
    for fixture in ("crm", "crm_cli", "crm_clock", "crm_factory", "crm_outbox", "crm_backend"):
        assert f"## fixture `{fixture}`" in page


@pytest.mark.parametrize("name", refdoc.REGISTRATION)
def test_every_registration_object_has_a_running_example(name):
    cls = getattr(crmcore, name)
    tests = [t for t in doctest.DocTestFinder().find(cls, name) if t.name == name]
    assert tests and tests[0].examples, f"{name}'s docstring has no example"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in tests:
        runner.run(test)
    assert runner.failures == 0


@pytest.mark.parametrize("module", [crmcore.registry, crmcore.entities])
def test_the_doctests_of_the_registration_modules_pass(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("name", refdoc.DOCUMENTED_MODULES)
def test_the_examples_of_every_documented_module_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, name


def test_the_documented_modules_cover_the_crm_and_the_registration_objects():
    from crmcore.service import CRM

    shown = {getattr(crmcore, name).__module__ for name in refdoc.REGISTRATION}
    classes = [CRM, *CRM.SERVICES.values()]
    for base in {b for cls in classes for b in cls.__mro__}:
        if base.__module__.startswith("crmcore"):
            shown |= {m.__module__ for m in vars(base).values() if inspect.isfunction(m)}
    assert shown <= set(refdoc.DOCUMENTED_MODULES), shown - set(refdoc.DOCUMENTED_MODULES)


def test_the_schema_page_lists_every_core_table_and_live_customers():
    from crmcore.schema import metadata

    page = refdoc.schema_page()
    assert "## `live_customers`" in page and "forgotten_at IS NULL" in page
    for table in metadata.tables:
        assert f"(table `{table}`," in page, table


def test_the_readme_links_the_reference():
    assert "docs/reference/README.md" in (ROOT / "README.md").read_text()
