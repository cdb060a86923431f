"""A user's files are never destroyed, truncated, half-written or left readable
by others: the demo directory, rejects files, backups and restores, exports,
the outbox log and new database files."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crmcore import backup as backup_mod
from crmcore.backup import backup, inspect_backup, restore
from crmcore.cli import cli
from crmcore.cli.export import export_customers
from crmcore.db import make_engine
from crmcore.errors import AccessDenied, CRMError, ValidationError
from crmcore.schema import audit_log


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` with its content hash."""
    return {
        str(p.relative_to(directory)): digest(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


# -- crm demo --dir ---------------------------------------------------------------------
@pytest.fixture
def demo_env(monkeypatch: pytest.MonkeyPatch):
    for name in ("CRM_CONFIG", "CRM_DATABASE_URL", "CRM_AS"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str):
        return CliRunner().invoke(cli, ["demo", *args])

    return run


def test_demo_refuses_a_directory_it_did_not_make(demo_env, tmp_path, monkeypatch):
    home = tmp_path / "work"
    home.mkdir()
    (home / "crm.toml").write_text("[crm]\ndatabase = 'sqlite:///crm.db'\n")
    (home / "crm.db").write_bytes(b"my real customers")
    (home / "notes.txt").write_text("keep me")
    before = snapshot(home)
    monkeypatch.chdir(home)
    for target in (".", str(home)):
        result = demo_env("--dir", target)
        assert result.exit_code == 1
        assert "holds no crmcore demo" in result.stderr and "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1
        assert snapshot(home) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]  # no temporary left


def test_demo_replaces_only_its_own_previous_demo(demo_env, tmp_path):
    target = tmp_path / "demo"
    assert demo_env("--dir", str(target)).exit_code == 0
    assert (target / ".crmcore-demo").is_file() and mode(target / "crm.db") == 0o600
    (target / "my-report.csv").write_text("mine")
    before = snapshot(target)
    refused = demo_env("--dir", str(target))
    assert refused.exit_code == 1 and "my-report.csv" in refused.stderr
    assert snapshot(target) == before
    (target / "my-report.csv").unlink()
    again = demo_env("--dir", str(target), "--json")
    assert again.exit_code == 0, again.output
    assert "replaced the previous demo" in json.loads(again.stdout)["text"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]
    config = (target / "crm.toml").read_text()
    assert 'database = "sqlite:///crm.db"' in config and ".building-" not in config
    timeline = CliRunner().invoke(cli, ["--config", str(target / "crm.toml"), "timeline", "C-1001"])
    assert timeline.exit_code == 0, timeline.output


def test_demo_fills_an_empty_current_directory_in_place(demo_env, tmp_path, monkeypatch):
    home = tmp_path / "empty"
    home.mkdir()
    monkeypatch.chdir(home)
    result = demo_env("--dir", ".")
    assert result.exit_code == 0, result.output
    assert Path(os.getcwd()) == home and (home / "crm.db").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_a_failed_demo_leaves_no_half_built_directory(demo_env, tmp_path, monkeypatch):
    import crmcore.demo

    def missing_extra(crm):
        raise CRMError("the 'analytics' extra is not installed: pip install 'crmcore[analytics]'")

    fresh = tmp_path / "fresh"
    monkeypatch.setattr(crmcore.demo, "_core_data", missing_extra)
    failed = demo_env("--dir", str(fresh))
    assert failed.exit_code == 1 and "extra is not installed" in failed.stderr
    assert list(tmp_path.iterdir()) == []  # neither the directory nor a temporary one
    monkeypatch.undo()

    previous = tmp_path / "previous"
    assert demo_env("--dir", str(previous)).exit_code == 0
    before = snapshot(previous)
    monkeypatch.setattr(crmcore.demo, "_core_data", missing_extra)
    assert demo_env("--dir", str(previous)).exit_code == 1
    assert snapshot(previous) == before  # the previous demo is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["previous"]


# -- import --rejects -----------------------------------------------------------------------
TX_HEADER = "customer_external_id,occurred_at,amount,external_id\n"


def write_tx(path: Path, rows: int, bad_every: int = 0) -> Path:
    lines = [TX_HEADER]
    for i in range(rows):
        amount = "oops" if bad_every and i % bad_every == 0 else "12.50"
        lines.append(f"C-1,2026-01-0{1 + i % 5}T10:00,{amount},t{i}\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def importing(crm, tmp_path):
    crm.customers.add("Ann", external_id="C-1")
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    return write_tx(tmp_path / "till.csv", 40, bad_every=7)


def test_a_refused_user_truncates_no_file_with_rejects(crm, crm_cli, importing, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    targets = [victim]
    database = crm.engine.url.database
    if crm.engine.dialect.name == "sqlite":
        targets.append(Path(database))
    for target in targets:
        before = digest(target)
        result = crm_cli(
            "--as", "zhang", "import", "transactions", importing, "--skip-invalid",
            "--rejects", target, "--force",
        )  # fmt: skip
        assert result.exit_code == 1 and "may not import" in result.stderr
        assert digest(target) == before
    assert crm.customers.list()  # the database still opens


def test_rejects_may_not_be_the_input_or_the_database(crm, crm_cli, importing):
    before = digest(importing)
    same = crm_cli(
        "import", "transactions", importing, "--skip-invalid", "--rejects", importing, "--force"
    )
    assert same.exit_code == 1 and "is the input file" in same.stderr
    assert digest(importing) == before
    with crm.transaction(write=False):
        assert crm.db.scalar(sa.text("SELECT count(*) FROM transactions")) == 0
    if crm.engine.dialect.name == "sqlite":
        database = crm.engine.url.database
        db_before = digest(Path(database))
        into_db = crm_cli(
            "import", "transactions", importing, "--skip-invalid", "--rejects", database, "--force"
        )
        assert into_db.exit_code == 1 and "is the database file" in into_db.stderr
        assert digest(Path(database)) == db_before


def test_existing_rejects_needs_force_and_is_written_privately(crm, crm_cli, importing, tmp_path):
    rejects = tmp_path / "rejects.csv"
    rejects.write_text("an older report")
    refused = crm_cli("import", "transactions", importing, "--skip-invalid", "--rejects", rejects)
    assert (
        refused.exit_code == 1
        and "already exists" in refused.stderr
        and "--force" in refused.stderr
    )
    assert rejects.read_text() == "an older report"
    forced = crm_cli(
        "import", "transactions", importing, "--skip-invalid", "--rejects", rejects, "--force",
        "--json",
    )  # fmt: skip
    assert forced.exit_code == 0, forced
    rows = list(csv.reader(rejects.open(encoding="utf-8")))
    assert rows[0][:2] == ["line", "error"] and len(rows) == 1 + forced.json()["rejected"] == 7
    assert mode(rejects) == 0o600


def test_an_interrupted_import_leaves_no_rejects_file(crm, importing, tmp_path, monkeypatch):
    from crmcore.importer import _transactions, import_transactions

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_transactions._TxImport, "flush", interrupted)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(KeyboardInterrupt):
        import_transactions(
            crm, str(importing), skip_invalid=True, rejects=str(tmp_path / "r.csv"), batch_size=5
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_rejects_through_a_symlink_is_refused(crm, crm_cli, importing, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "rejects.csv"
    link.symlink_to(victim)
    result = crm_cli(
        "import", "transactions", importing, "--skip-invalid", "--rejects", link, "--force"
    )
    assert result.exit_code == 1 and "symbolic link" in result.stderr
    assert victim.read_text() == "precious"


# -- db restore -------------------------------------------------------------------------
def _restore_refused(crm, path: Path, match: str) -> None:
    names = [c.name for c in crm.customers.list()]
    with pytest.raises(ValidationError, match=match):
        restore(crm.engine, path)
    assert [c.name for c in crm.customers.list()] == names


def test_restore_refuses_what_is_not_a_crmcore_backup(crm, tmp_path, crm_backend):
    crm.customers.add("Ann")
    empty = tmp_path / "empty.backup"
    empty.write_bytes(b"")
    _restore_refused(crm, empty, "empty")
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    con.execute("INSERT INTO notes (text) VALUES ('someone else''s database')")
    con.commit()
    con.close()
    expected = "missing tables: alembic_version" if crm_backend == "sqlite" else "not a pg_dump"
    _restore_refused(crm, other, expected)


def _backup_with_version(crm, path: Path, version: str) -> None:
    """A real backup of this database whose core schema version reads ``version``."""
    with crm.engine.begin() as conn:
        old = conn.execute(
            sa.text("SELECT version_num FROM alembic_version WHERE version_num LIKE 'crmcore%'")
        ).scalar_one()
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :v WHERE version_num = :o"), {"v": version, "o": old})  # fmt: skip
    try:
        backup(crm.engine, path)
    finally:
        with crm.engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = :o WHERE version_num = :v"), {"v": version, "o": old})  # fmt: skip


def _versions(crm) -> list[str]:
    with crm.engine.connect() as conn:
        return sorted(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def test_restore_refuses_an_unknown_or_newer_schema_and_says_what_it_restores(crm, tmp_path):
    ann = crm.customers.add("Ann")
    crm.records.add_transaction(ann, 1500)
    crm.records.add_transaction(ann, 700)
    _backup_with_version(crm, tmp_path / "newer.backup", "crmcore_0999")
    _restore_refused(crm, tmp_path / "newer.backup", "crmcore_0999 is unknown here")
    backup(crm.engine, tmp_path / "good.backup")
    crm.customers.add("Added later")
    seen = inspect_backup(crm.engine, tmp_path / "good.backup")
    info = restore(crm.engine, tmp_path / "good.backup")
    assert info["versions"] == _versions(crm) and info["schema_current"] is True
    assert (info["customers"], info["transactions"]) == (1, 2)
    assert seen["versions"] == info["versions"]
    assert [c.name for c in crm.customers.list()] == ["Ann"]


def test_restore_says_an_older_schema_needs_an_upgrade(crm, tmp_path):
    crm.customers.add("Ann")
    _backup_with_version(crm, tmp_path / "older.backup", "crmcore_0003")
    real = _versions(crm)
    try:
        info = restore(crm.engine, tmp_path / "older.backup")
    finally:  # the restored label is not the schema's real version: put the real one back
        core = next(v for v in real if v.startswith("crmcore"))
        with crm.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE alembic_version SET version_num = :v WHERE version_num = 'crmcore_0003'"),
                {"v": core},
            )  # fmt: skip
    assert info["schema_current"] is False and "crm db upgrade" in info["note"]


def test_a_failed_sqlite_restore_puts_the_previous_database_back(crm, tmp_path, monkeypatch):
    if crm.engine.dialect.name != "sqlite":
        pytest.skip("a SQLite restore copies pages; PostgreSQL restores in one transaction")
    crm.customers.add("Ann")
    backup(crm.engine, tmp_path / "good.backup")
    crm.customers.add("Bea")
    database = crm.engine.url.database
    real_copy = backup_mod._copy_sqlite

    def copy_then_fail(source: str, target: str) -> None:
        real_copy(source, target)
        if target == database and source.endswith("good.backup"):
            raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(backup_mod, "_copy_sqlite", copy_then_fail)
    with pytest.raises(CRMError, match="previous database was put back"):
        restore(crm.engine, tmp_path / "good.backup")
    assert sorted(c.name for c in crm.customers.list()) == ["Ann", "Bea"]
    assert not [p for p in Path(database).parent.iterdir() if "before-restore" in p.name]


def test_cli_restore_prints_what_it_restored(crm, crm_cli, tmp_path):
    crm.customers.add("Ann")
    backup(crm.engine, tmp_path / "b.backup")
    out = crm_cli("db", "restore", tmp_path / "b.backup", "--yes")
    assert out.exit_code == 0 and "1 customers, 0 transactions" in out.stdout
    refused = crm_cli("db", "restore", tmp_path / "missing", "--yes")
    assert refused.exit_code == 1 and "backup file not found" in refused.stderr


# -- export -----------------------------------------------------------------------------
def _audit_rows(crm, *actions: str) -> list:
    with crm.transaction(write=False):
        return crm.db.all(
            sa.select(audit_log).where(audit_log.c.action.in_(actions)).order_by(audit_log.c.id)
        )


def test_an_interrupted_export_leaves_no_file_but_its_intent_is_audited(crm, tmp_path, monkeypatch):
    for i in range(5):
        crm.customers.add(f"Customer {i}", phone=f"1380000000{i}")
    real_writer = csv.writer

    class FailingWriter:
        def __init__(self, f):
            self.inner, self.rows = real_writer(f), 0

        def writerow(self, row):
            self.rows += 1
            if self.rows == 3:
                raise OSError(28, "No space left on device")
            self.inner.writerow(row)

    monkeypatch.setattr(csv, "writer", FailingWriter)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(CRMError, match="cannot write the export: No space left"):
        export_customers(crm, str(tmp_path / "all.csv"))
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no file, no temporary
    rows = _audit_rows(crm, "export_started", "export")
    assert [r.action for r in rows] == ["export_started"]
    assert rows[0].after["path"] == str((tmp_path / "all.csv").absolute())
    assert rows[0].after["personal_data"] is True


def test_an_export_is_private_and_audited_before_and_after(crm, tmp_path):
    crm.customers.add("Ann", phone="13800000001")
    out = export_customers(crm, str(tmp_path / "all.csv"))
    assert out["rows"] == 1 and mode(tmp_path / "all.csv") == 0o600
    started, done = _audit_rows(crm, "export_started", "export")
    assert started.id < done.id and done.after["rows"] == 1
    assert started.staff_id == done.staff_id


def test_export_refuses_a_symlink_and_audits_nothing(crm, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "out.csv").symlink_to(victim)
    with pytest.raises(ValidationError, match="symbolic link"):
        export_customers(crm, str(tmp_path / "out.csv"))
    assert victim.read_text() == "precious" and _audit_rows(crm, "export_started") == []


def test_a_refused_export_writes_no_file(crm, tmp_path):
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    with pytest.raises(AccessDenied):
        export_customers(crm.as_("zhang"), str(tmp_path / "x.csv"))
    assert not (tmp_path / "x.csv").exists() and _audit_rows(crm, "export_started") == []


# -- file modes, symlinks and passwords -----------------------------------------------------
def test_backups_outbox_log_and_new_databases_are_private(crm, tmp_path):
    crm.customers.add("Ann", phone="13800000001")
    backup(crm.engine, tmp_path / "b.backup")
    assert mode(tmp_path / "b.backup") == 0o600
    crm.messages.enqueue("sms", body="hello", customer=1)
    crm.messages.send_outbox()
    assert mode(tmp_path / "outbox.log") == 0o600
    fresh = tmp_path / "fresh.db"
    engine = make_engine(f"sqlite:///{fresh}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert mode(fresh) == 0o600 and mode(Path(f"{fresh}-wal")) == 0o600
    engine.dispose()


def test_backup_refuses_a_symlink_target(crm, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "b.backup").symlink_to(victim)
    with pytest.raises(ValidationError, match="symbolic link"):
        backup(crm.engine, tmp_path / "b.backup")
    assert victim.read_text() == "precious"


def test_pg_dump_and_pg_restore_get_the_password_from_the_environment(tmp_path, monkeypatch):
    engine = make_engine("postgresql://crm:s3cr%40t@db.example:5432/crm")
    calls: list[tuple[list[str], dict[str, str]]] = []

    def fake_run(argv, capture_output, text, env):
        calls.append((list(argv), dict(env)))
        if "--list" in argv:
            listing = "".join(
                f"1; 0 0 TABLE DATA public {t} crm\n" for t in backup_mod.REQUIRED_TABLES
            )
            return subprocess.CompletedProcess(argv, 0, listing, "")
        if "--data-only" in argv:
            return subprocess.CompletedProcess(argv, 0, "COPY public.alembic_version (version_num) FROM stdin;\ncrmcore_0004\n\\.\n", "")  # fmt: skip
        if argv[0] == "pg_restore":
            return subprocess.CompletedProcess(argv, 1, "", "pg_restore: error: connection refused")
        Path(argv[argv.index("--file") + 1]).write_bytes(b"PGDMP archive")
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(backup_mod, "_need", lambda tool: None)
    monkeypatch.setattr(backup_mod.subprocess, "run", fake_run)
    backup(engine, tmp_path / "pg.backup")
    assert mode(tmp_path / "pg.backup") == 0o600
    with pytest.raises(CRMError, match="previous database is unchanged"):
        restore(engine, tmp_path / "pg.backup", version_dirs=[])
    assert [argv[0] for argv, _ in calls] == ["pg_dump", "pg_restore", "pg_restore", "pg_restore"]
    for argv, env in calls:
        assert not any("s3cr" in arg for arg in argv), argv
        assert env["PGPASSWORD"] == "s3cr@t"
    assert any("postgresql://crm@db.example:5432/crm" in arg for arg in calls[0][0])


def test_private_output_never_replaces_a_file_that_appears_meanwhile(tmp_path):
    from crmcore.files import private_output

    target = tmp_path / "out.csv"
    with pytest.raises(ValidationError, match="already exists"):
        with private_output(target, "export") as temp:
            temp.write_text("new")
            target.write_text("someone else's")
    assert target.read_text() == "someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_rewriting_the_log_loses_no_line_appended_meanwhile(tmp_path):
    import threading

    from crmcore.files import append_private_line, rewrite_private_lines

    log = tmp_path / "outbox.log"
    for i in range(50):
        append_private_line(log, f"line {i}")

    def writer() -> None:
        for i in range(50, 250):
            append_private_line(log, f"line {i}")

    thread = threading.Thread(target=writer)
    thread.start()
    for _ in range(20):
        rewrite_private_lines(log, lambda line: line.replace("line 1", "LINE 1"))
    thread.join()
    lines = log.read_text().splitlines()
    assert len(lines) == 250 and mode(log) == 0o600
    assert os.stat(log).st_nlink == 1
