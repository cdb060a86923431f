"""Where the configuration and the database are: paths relative to crm.toml,
no crm.toml here, a missing database file, and `crm init` that either succeeds
entirely or leaves nothing behind."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from crmcore import config as config_mod
from crmcore.cli import cli
from crmcore.errors import CRMError

NO_CRM_ENV = {"CRM_CONFIG": None, "CRM_DATABASE_URL": None, "CRM_AS": None}
NO_CONFIG = "error: no crm.toml here; run `crm init` or pass --config\n"


def crm(cwd: Path, *args: str) -> Result:
    """Run ``crm ARGS`` in ``cwd`` (in this process), without CRM_* variables."""
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, list(args), env=NO_CRM_ENV, catch_exceptions=False)
    finally:
        os.chdir(old)


def files(directory: Path) -> list[str]:
    """Every path under ``directory`` but SQLite's transient WAL/shared-memory files."""
    return sorted(
        str(p.relative_to(directory))
        for p in directory.rglob("*")
        if not p.name.endswith(("-wal", "-shm"))
    )


def test_a_sqlite_path_in_crm_toml_is_relative_to_the_file(tmp_path: Path) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    assert crm(tmp_path, "--config", "project/crm.toml", "init").exit_code == 0
    assert (project / "crm.db").exists() and not (tmp_path / "crm.db").exists()
    assert 'database = "sqlite:///crm.db"' in (project / "crm.toml").read_text()
    added = crm(tmp_path, "--config", "project/crm.toml", "customer", "add", "--name", "Wu Fang")
    assert added.exit_code == 0, added.stderr

    inside = crm(project, "customer", "list", "--json")  # cd project && crm customer list
    assert inside.exit_code == 0, inside.stderr
    assert [c["name"] for c in json.loads(inside.stdout)["customers"]] == ["Wu Fang"]
    absolute = crm(elsewhere, "--config", str(project / "crm.toml"), "customer", "list", "--json")
    assert absolute.exit_code == 0, absolute.stderr
    assert [c["name"] for c in json.loads(absolute.stdout)["customers"]] == ["Wu Fang"]
    assert files(elsewhere) == []  # no empty crm.db next to where the command ran


def test_db_on_the_command_line_stays_relative_to_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    assert crm(tmp_path, "--config", "project/crm.toml", "init").exit_code == 0
    upgraded = crm(
        tmp_path, "--config", "project/crm.toml", "--db", "sqlite:///here.db", "db", "upgrade"
    )
    assert upgraded.exit_code == 0, upgraded.stderr
    assert (tmp_path / "here.db").exists() and not (tmp_path / "project" / "here.db").exists()


def test_outbox_path_is_relative_to_the_file_too(tmp_path: Path) -> None:
    (tmp_path / "crm.toml").write_text('[crm]\noutbox_path = "logs/outbox.log"\n')
    cfg = config_mod.load(tmp_path / "crm.toml")
    assert Path(cfg.core["outbox_path"]) == tmp_path / "logs" / "outbox.log"
    assert Path(cfg.database.removeprefix("sqlite:///")) == (tmp_path / "crm.db").resolve()


@pytest.mark.parametrize(
    "args",
    [
        ["customer", "list"],
        ["db", "upgrade"],
        ["staff", "add", "zhang", "--name", "Zhang Wei", "--role", "rep"],
        ["analytics", "abc"],
        ["jobs", "run"],
        ["outbox", "send"],
        ["timeline", "1"],
    ],
)
def test_without_crm_toml_commands_say_so_and_create_nothing(
    tmp_path: Path, args: list[str]
) -> None:
    result = crm(tmp_path, *args)
    assert result.exit_code == 1
    assert result.stderr == NO_CONFIG
    assert files(tmp_path) == []


def test_help_version_and_plugins_list_need_no_crm_toml(tmp_path: Path) -> None:
    for args in (["--help"], ["--version"], ["customer", "list", "--help"], ["plugins", "list"]):
        result = crm(tmp_path, *args)
        assert result.exit_code == 0, (args, result.stderr)
    assert files(tmp_path) == []


def test_a_configured_sqlite_file_that_does_not_exist_is_not_created_empty(tmp_path: Path) -> None:
    (tmp_path / "crm.toml").write_text('[crm]\ndatabase = "sqlite:///gone.db"\n')
    result = crm(tmp_path, "customer", "list")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "gone.db does not exist" in result.stderr
    assert "`crm init` or `crm db upgrade`" in result.stderr
    assert not (tmp_path / "gone.db").exists()
    # the commands that create the schema do create it
    assert crm(tmp_path, "db", "upgrade").exit_code == 0
    assert (tmp_path / "gone.db").exists()
    assert crm(tmp_path, "customer", "list").exit_code == 0


def test_a_failed_init_leaves_nothing_behind(tmp_path: Path) -> None:
    misspelt = crm(tmp_path, "init", "--plugin", "retial")
    assert misspelt.exit_code == 1
    assert "'retial', which is not installed" in misspelt.stderr
    assert files(tmp_path) == []
    bad_url = crm(tmp_path, "init", "--db", "mysql://u@host/crm")
    assert bad_url.exit_code == 1 and "supported: sqlite:///PATH" in bad_url.stderr
    assert files(tmp_path) == []
    # nothing to delete by hand: the next init just works
    assert crm(tmp_path, "init", "--plugin", "retail").exit_code == 0
    assert files(tmp_path) == ["crm.db", "crm.toml"]
    assert config_mod.load(tmp_path / "crm.toml").enabled == ["retail"]


def test_init_failing_while_creating_the_schema_removes_the_database_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crmcore.services.admin import AdminService

    real_upgrade = AdminService.upgrade

    def half_then_fail(self: Any) -> list[str]:
        real_upgrade(self)  # the file and its tables exist now
        raise CRMError("the disk is full")

    monkeypatch.setattr(AdminService, "upgrade", half_then_fail)
    failed = crm(tmp_path, "init")
    assert failed.exit_code == 1 and failed.stderr == "error: the disk is full\n"
    assert files(tmp_path) == []


def test_init_keeps_an_existing_database_when_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crmcore.services.admin import AdminService

    assert crm(tmp_path, "init", "--db", "sqlite:///kept.db").exit_code == 0
    (tmp_path / "crm.toml").unlink()

    def fail(self: Any) -> list[str]:
        raise CRMError("the disk is full")

    monkeypatch.setattr(AdminService, "upgrade", fail)
    assert crm(tmp_path, "init", "--db", "sqlite:///kept.db").exit_code == 1
    assert (tmp_path / "kept.db").exists()  # not init's to delete: it was there before
    assert not (tmp_path / "crm.toml").exists()


def test_init_accepts_db(tmp_path: Path) -> None:
    result = crm(tmp_path, "init", "--db", "sqlite:///mine.db", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["config_written"] is True
    assert (tmp_path / "mine.db").exists() and not (tmp_path / "crm.db").exists()
    assert 'database = "sqlite:///mine.db"' in (tmp_path / "crm.toml").read_text()
    assert crm(tmp_path, "customer", "list").exit_code == 0


def test_init_db_relative_to_here_is_written_for_a_config_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    result = crm(tmp_path, "--config", "etc/crm.toml", "init", "--db", "sqlite:///data.db")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "data.db").exists()
    cfg = config_mod.load(tmp_path / "etc" / "crm.toml")
    assert cfg.database == f"sqlite:///{(tmp_path / 'data.db').resolve()}"


def test_init_writes_crm_toml_in_one_step(tmp_path: Path) -> None:
    assert crm(tmp_path, "init").exit_code == 0
    assert files(tmp_path) == ["crm.db", "crm.toml"]
    first = (tmp_path / "crm.toml").read_text()
    again = crm(tmp_path, "init", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["config_written"] is False
    assert (tmp_path / "crm.toml").read_text() == first
    assert files(tmp_path) == ["crm.db", "crm.toml"]  # no temporary file left over


def test_the_demo_directory_works_from_inside_and_after_a_move(tmp_path: Path) -> None:
    assert crm(tmp_path, "demo", "--dir", "d").exit_code == 0
    inside = crm(tmp_path / "d", "timeline", "C-1001", "--json")
    assert inside.exit_code == 0, inside.stderr
    (tmp_path / "d").rename(tmp_path / "moved")
    moved = crm(tmp_path, "--config", "moved/crm.toml", "customer", "list", "--json")
    assert moved.exit_code == 0, moved.stderr
    assert len(json.loads(moved.stdout)["customers"]) >= 2


def test_init_writes_any_url_as_valid_toml(tmp_path: Path) -> None:
    result = crm(tmp_path, "init", "--db", 'sqlite:///say "hi"\\there.db', "--json")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / 'say "hi"\\there.db').exists()
    assert crm(tmp_path, "customer", "list").exit_code == 0


def test_a_relative_path_with_spaces_and_a_query_keeps_both(tmp_path: Path) -> None:
    (tmp_path / "my data").mkdir()
    (tmp_path / "crm.toml").write_text('[crm]\ndatabase = "sqlite:///my data/crm.db?timeout=3"\n')
    cfg = config_mod.load(tmp_path / "crm.toml")
    assert cfg.database == f"sqlite:///{(tmp_path / 'my data' / 'crm.db').resolve()}?timeout=3"
    assert crm(tmp_path, "db", "upgrade").exit_code == 0
    assert (tmp_path / "my data" / "crm.db").exists()


def test_init_into_a_directory_that_does_not_exist(tmp_path: Path) -> None:
    result = crm(tmp_path, "--config", "nodir/crm.toml", "init")
    assert result.exit_code == 1
    assert result.stderr == "error: nodir/crm.toml: directory 'nodir' does not exist\n"
    assert files(tmp_path) == []


def test_init_never_overwrites_a_crm_toml_written_while_it_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crmcore.services.admin import AdminService

    real_upgrade = AdminService.upgrade

    def someone_else_writes_the_config(self: Any) -> list[str]:
        (tmp_path / "crm.toml").write_text('[crm]\nplugins = ["retail"]\n')
        return real_upgrade(self)

    monkeypatch.setattr(AdminService, "upgrade", someone_else_writes_the_config)
    result = crm(tmp_path, "init")
    assert result.exit_code == 1
    assert result.stderr == "error: crm.toml appeared while init ran; it was kept, run init again\n"
    assert (tmp_path / "crm.toml").read_text() == '[crm]\nplugins = ["retail"]\n'
    assert files(tmp_path) == ["crm.toml"]
