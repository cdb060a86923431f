"""The audit trail is append-only and hash-chained: nobody rewrites it unnoticed."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from crmcore import AccessDenied, Conflict
from crmcore.audit import GENESIS, REDACTED, row_hash, values_digest, verify
from crmcore.schema import audit_log, customers, interactions
from crmcore.storage._driver import connection


def _world(crm: Any) -> dict[str, Any]:
    """Five audit rows: three customers added, one renamed, one interaction."""
    ann = crm.customers.add("Ann", phone="13800000001")
    bob = crm.customers.add("Bob", phone="13800000002", email="bob@example.cn")
    cy = crm.customers.add("Cy")
    crm.customers.update(ann, name="Anne")
    crm.records.add_interaction(bob, "note", "called back")
    return {"ann": ann, "bob": bob, "cy": cy}


def _rows(crm: Any) -> list[Any]:
    with crm.transaction(write=False):
        return connection(crm.db).execute(sa.select(audit_log).order_by(audit_log.c.id)).all()


@contextlib.contextmanager
def raw_access(crm: Any) -> Iterator[Callable[..., None]]:
    """SQL straight on the database with the append-only triggers out of the way,
    as someone holding the database file or a superuser login could."""
    if crm.engine.dialect.name == "sqlite":
        con = sqlite3.connect(crm.engine.url.database, isolation_level=None)
        con.execute("DROP TRIGGER audit_log_no_update")
        con.execute("DROP TRIGGER audit_log_no_delete")
        try:
            yield lambda sql, params=(): con.execute(sql, params)
        finally:
            con.close()
        return
    raw = crm.engine.raw_connection()
    cur = raw.cursor()
    cur.execute("SET session_replication_role = replica")  # superuser: triggers off
    try:
        yield lambda sql, params=(): cur.execute(sql.replace("?", "%s"), params)
        raw.commit()
    finally:
        cur.execute("SET session_replication_role = DEFAULT")
        raw.commit()
        raw.close()


def _verdict(crm: Any, **kw: Any) -> Any:
    with crm.transaction(write=False):
        return verify(connection(crm.db), **kw)


def _set_after_name(crm: Any, row_id: int, name: str) -> str:
    if crm.engine.dialect.name == "sqlite":
        return (
            f"UPDATE audit_log SET after = json_set(after, '$.name', '{name}') WHERE id = {row_id}"
        )
    return (
        f"UPDATE audit_log SET after = jsonb_set(after::jsonb, '{{name}}', '\"{name}\"')::json "
        f"WHERE id = {row_id}"
    )


# -- the chain -------------------------------------------------------------------


def test_every_row_is_chained_to_the_one_before(crm):
    _world(crm)
    rows = _rows(crm)
    assert [r.id for r in rows] == [1, 2, 3, 4, 5]
    prev = GENESIS
    for r in rows:
        assert r.prev_hash == prev
        assert r.values_digest == values_digest(r.before, r.after, r.values_salt)
        assert r.row_hash == row_hash(prev, r._mapping)
        prev = r.row_hash
    verdict = _verdict(crm)
    assert verdict.ok and verdict.rows == 5 and verdict.head == rows[-1].row_hash


def test_an_edited_value_is_detected(crm):
    _world(crm)
    with raw_access(crm) as sql:
        sql(_set_after_name(crm, 1, "Mallory"))
    verdict = _verdict(crm)
    assert not verdict.ok and verdict.broken_at == 1 and verdict.rows == 0
    assert "do not match their digest" in verdict.reason


def test_an_edited_field_is_detected(crm):
    _world(crm)
    with raw_access(crm) as sql:
        sql("UPDATE audit_log SET staff_id = 99 WHERE id = 4")
    verdict = _verdict(crm)
    assert (verdict.ok, verdict.broken_at, verdict.rows) == (False, 4, 3)
    assert "row_hash" in verdict.reason


def test_a_deleted_row_in_the_middle_is_detected(crm):
    _world(crm)
    with raw_access(crm) as sql:
        sql("DELETE FROM audit_log WHERE id = 3")
    verdict = _verdict(crm)
    assert (verdict.ok, verdict.broken_at) == (False, 4)
    assert "prev_hash" in verdict.reason


def test_reordered_ids_are_detected(crm):
    _world(crm)
    with raw_access(crm) as sql:
        sql("UPDATE audit_log SET id = 1000 WHERE id = 2")
        sql("UPDATE audit_log SET id = 2 WHERE id = 3")
        sql("UPDATE audit_log SET id = 3 WHERE id = 1000")
    verdict = _verdict(crm)
    assert (verdict.ok, verdict.broken_at) == (False, 2)


@pytest.mark.parametrize("forged_hash", ["none", "made_up"])
def test_a_forged_insert_is_detected(crm, forged_hash):
    _world(crm)
    head = _rows(crm)[-1]
    digest = values_digest(None, {"name": "nobody"}, "ab" * 16)
    fake = None if forged_hash == "none" else "f" * 64
    with raw_access(crm) as sql:
        sql(
            "INSERT INTO audit_log (id, at, staff_id, command, entity, entity_id, customer_id, "
            "action, before, after, values_salt, values_digest, prev_hash, row_hash) "
            "VALUES (?, ?, NULL, 'crm customer add', 'customers', '9', 9, 'insert', NULL, "
            '\'{"name": "nobody"}\', ?, ?, ?, ?)',
            (head.id + 1, head.at, "ab" * 16, digest, head.row_hash, fake),
        )
    verdict = _verdict(crm)
    assert (verdict.ok, verdict.broken_at, verdict.rows) == (False, head.id + 1, 5)


def test_a_forged_row_between_two_others_breaks_the_next(crm):
    _world(crm)
    first, second = _rows(crm)[:2]
    with raw_access(crm) as sql:
        sql("UPDATE audit_log SET id = id + 10 WHERE id >= 2")
        # a row that chains correctly onto the first one
        forged = {**first._mapping, "id": 2, "values_digest": first.values_digest}
        sql(
            "INSERT INTO audit_log (id, at, staff_id, command, entity, entity_id, customer_id, "
            "action, before, after, values_salt, values_digest, prev_hash, row_hash) "
            "SELECT 2, at, staff_id, command, entity, entity_id, customer_id, action, before, "
            "after, values_salt, values_digest, ?, ? FROM audit_log WHERE id = 1",
            (first.row_hash, row_hash(first.row_hash, forged)),
        )
    verdict = _verdict(crm)
    assert (verdict.ok, verdict.broken_at) == (False, second.id + 10)


def test_verify_walks_in_batches(crm):
    _world(crm)
    assert _verdict(crm, batch=2).rows == 5
    with raw_access(crm) as sql:
        sql("UPDATE audit_log SET command = 'other' WHERE id = 5")
    verdict = _verdict(crm, batch=2)
    assert (verdict.ok, verdict.broken_at, verdict.rows) == (False, 5, 4)


def test_summary_rows_are_chained(crm):
    c = crm.customers.add("Ann")
    with crm.transaction(command="bulk"):
        rows = [
            {"customer_id": c.id, "kind": "note", "text": f"n{i}", "at": crm.now()}
            for i in range(3)
        ]
        crm.db.insert_rows(interactions, rows, what="notes")
        crm.db.execute(interactions.insert(), rows)
    actions = [(r.entity, r.after.get("rows")) for r in _rows(crm)[1:]]
    assert actions == [("interactions", 3), ("interactions", 3)]
    assert _verdict(crm).ok


def test_redaction_of_a_forgotten_customer_keeps_the_chain_valid(crm):
    w = _world(crm)
    crm.customers.forget(w["bob"])
    bob_rows = [
        r
        for r in _rows(crm)
        if r.customer_id == w["bob"].id and r.action not in ("forget", "forget_copies")
    ]
    assert bob_rows and all(r.before == REDACTED and r.after == REDACTED for r in bob_rows)
    # the salt is gone: the kept digest cannot be used to guess the values back
    assert all(r.values_salt is None for r in bob_rows)
    assert "13800000002" not in str([tuple(r) for r in _rows(crm)])
    verdict = _verdict(crm)
    assert verdict.ok and verdict.rows == len(_rows(crm))


def test_a_faked_redaction_is_detected(crm):
    w = _world(crm)
    with raw_access(crm) as sql:
        redacted = '{"redacted": true}'
        sql(
            "UPDATE audit_log SET before = ?, after = ? WHERE customer_id = ?",
            (redacted, redacted, w["bob"].id),
        )
    verdict = _verdict(crm)
    assert (verdict.ok, verdict.broken_at) == (False, 2)
    assert "no customer was forgotten after it" in verdict.reason


def test_the_writer_reads_before_and_after_images_in_one_query_each(crm):
    for name in ("A", "B", "C"):
        crm.customers.add(name)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if "pg_advisory_xact_lock" not in statement:  # PostgreSQL's chain lock
            statements.append(statement.split()[0].upper())

    sa.event.listen(crm.engine, "before_cursor_execute", count)
    try:
        with crm.transaction():
            crm.db.execute(sa.update(customers).values(stage="new"))
    finally:
        sa.event.remove(crm.engine, "before_cursor_execute", count)
    # the head of the chain, the before images, the update, the after images, the rows
    assert statements.count("SELECT") == 3 and statements.count("UPDATE") == 1
    assert statements.count("INSERT") == 1
    assert [r.action for r in _rows(crm)][-3:] == ["update"] * 3
    assert _verdict(crm).ok


# -- append-only --------------------------------------------------------------------


@pytest.mark.parametrize("who", ["system", "admin"])
def test_the_query_layer_refuses_every_write_of_the_audit_trail(crm, who):
    crm.staff.add("root", "Root", roles=["admin"])
    _world(crm)
    actor = crm if who == "system" else crm.as_("root")
    before = [tuple(r) for r in _rows(crm)]
    attempts = [
        lambda: actor.db.execute(sa.delete(audit_log)),
        lambda: actor.db.execute(sa.update(audit_log).values(command="rewritten")),
        lambda: actor.db.execute(
            audit_log.insert().values(at=crm.now(), entity="customers", action="insert")
        ),
        lambda: actor.db.insert_rows(
            audit_log, [{"at": crm.now(), "entity": "x", "action": "insert"}]
        ),
        lambda: actor.db.execute("DELETE FROM audit_log"),
        lambda: actor.db.execute(sa.text('UPDATE "audit_log" SET command = :c'), {"c": "x"}),
        lambda: actor.db.driver_query(
            "INSERT INTO audit_log (at, entity, action) VALUES (?, ?, ?)", (crm.now(), "x", "y")
        ),
        lambda: actor.db.execute(sa.delete(sa.table("audit_redaction"))),
    ]
    for attempt in attempts:
        with pytest.raises(AccessDenied, match="append-only"):
            with actor.transaction():
                attempt()
    assert [tuple(r) for r in _rows(crm)] == before


def test_the_database_refuses_updates_and_deletes_that_skip_the_query_layer(crm):
    w = _world(crm)
    refused = [
        sa.delete(audit_log).where(audit_log.c.id == 3),
        sa.update(audit_log).where(audit_log.c.id == 2).values(command="rewritten"),
        # shaped like a redaction, but without the redaction's marker
        sa.update(audit_log)
        .where(audit_log.c.customer_id == w["bob"].id)
        .values(before=REDACTED, after=REDACTED),
    ]
    if crm.engine.dialect.name == "postgresql":
        refused.append(sa.text("TRUNCATE audit_log"))
    for stmt in refused:
        with pytest.raises(Conflict, match="append-only"):
            with crm.transaction():
                connection(crm.db).execute(stmt)
    assert len(_rows(crm)) == 5 and _verdict(crm).ok


def test_under_the_redaction_marker_only_the_redaction_itself_passes(crm):
    w = _world(crm)

    def marker(conn: Any) -> None:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL crm.audit_redaction = 'on'")
        else:
            conn.exec_driver_sql("INSERT INTO audit_redaction (id) VALUES (1)")

    for stmt in (
        sa.update(audit_log).where(audit_log.c.id == 2).values(command="rewritten"),
        sa.update(audit_log).where(audit_log.c.id == 2).values(after={"name": "Mallory"}),
        sa.update(audit_log)
        .where(audit_log.c.id == 2)
        .values(before=REDACTED, after=REDACTED, values_salt=None, row_hash="0" * 64),
        # the redacted values, but the salt kept
        sa.update(audit_log).where(audit_log.c.id == 2).values(before=REDACTED, after=REDACTED),
        sa.delete(audit_log).where(audit_log.c.id == 2),
    ):
        with pytest.raises(Conflict, match="append-only"):
            with crm.transaction():
                marker(connection(crm.db))
                connection(crm.db).execute(stmt)
    crm.customers.forget(w["bob"])
    assert _verdict(crm).ok


def test_redaction_leaves_no_marker_behind(crm):
    w = _world(crm)
    with crm.transaction():
        crm.customers.forget(w["bob"])
        with pytest.raises(sa.exc.IntegrityError, match="append-only"):
            connection(crm.db).execute(sa.update(audit_log).values(before=REDACTED, after=REDACTED))


def test_concurrent_writers_keep_the_chain_linear(crm, crm_backend):
    if crm_backend != "postgresql":
        pytest.skip("SQLite has one writer at a time; PostgreSQL sessions write concurrently")
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(15):
                crm.customers.add(f"writer {n} customer {i}")
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = _rows(crm)
    assert [r.id for r in rows] == list(range(1, 61))
    verdict = _verdict(crm)
    assert verdict.ok and verdict.rows == 60


# -- the command ------------------------------------------------------------------


def test_cli_verify_reports_ok_and_the_first_broken_row(crm, crm_cli):
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    crm.staff.add("audit", "Auditor", roles=["auditor"])
    _world(crm)
    ok = crm_cli("--as", "audit", "audit", "verify", "--json")
    assert ok.exit_code == 0 and ok.json()["ok"] is True and ok.json()["rows"] == 7
    human = crm_cli("--as", "audit", "audit", "verify")
    assert human.exit_code == 0 and human.stdout.startswith("audit trail OK: 7 rows, head ")
    denied = crm_cli("--as", "zhang", "audit", "verify")
    assert denied.exit_code == 1 and "needs 'audit'" in denied.stderr
    with raw_access(crm) as sql:
        sql("DELETE FROM audit_log WHERE id = 4")
    broken = crm_cli("--as", "audit", "audit", "verify")
    assert broken.exit_code == 1
    assert broken.stderr.startswith("error: audit trail broken at row 5: its prev_hash")
    assert len(broken.stderr.strip().splitlines()) == 1
    as_json = crm_cli("--as", "audit", "audit", "verify", "--json")
    assert as_json.exit_code == 1 and as_json.json()["broken_at"] == 5


def test_cli_audit_still_lists_the_trail_of_a_customer(crm, crm_cli):
    c = crm.customers.add("Ann", external_id="verify-me")
    rows = crm_cli("audit", "verify-me", "--json").json()
    assert [r["entity_id"] for r in rows] == [str(c.id)]


def test_the_migration_chains_existing_rows_and_installs_the_triggers(tmp_path, crm_backend):
    import os

    from alembic import command

    from crmcore import CRM
    from crmcore.access import SYSTEM
    from crmcore.config import from_dict
    from crmcore.migrate import CORE_VERSIONS, _alembic_config
    from crmcore.testing import POSTGRES_ENV, _reset_schema, _with_search_path

    url = f"sqlite:///{tmp_path}/old.db"
    if crm_backend == "postgresql":
        schema = f"crmtest_audit_upgrade_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
        _reset_schema(os.environ[POSTGRES_ENV], schema)
        url = _with_search_path(os.environ[POSTGRES_ENV], schema)
    crm = CRM(from_dict({"crm": {"database": url}}), principal=SYSTEM)
    with crm.engine.connect() as conn, conn.begin():
        command.upgrade(_alembic_config(conn, [str(CORE_VERSIONS)]), "crmcore_0004")
        # the audit trail as it was before crmcore_0005: no hash columns, rows in it
        for i in (1, 2, 4):  # ids with a gap, as rolled-back sequences leave
            conn.execute(
                sa.text(
                    "INSERT INTO audit_log (id, at, staff_id, command, entity, entity_id, "
                    "customer_id, action, before, after) VALUES (:id, :at, NULL, 'crm x', "
                    "'customers', :key, :id, 'update', :before, :after)"
                ).bindparams(
                    sa.bindparam("before", type_=sa.JSON), sa.bindparam("after", type_=sa.JSON)
                ),
                {
                    "id": i,
                    "at": crm.now().replace(microsecond=0),
                    "key": str(i),
                    "before": {"name": "A"},
                    "after": {"name": "B"},
                },
            )
    crm.admin.upgrade()
    verdict = _verdict(crm)
    assert verdict.ok and verdict.rows == 3
    crm.customers.add("After the upgrade")
    assert [r.id for r in _rows(crm)] == [1, 2, 4, 5] and _verdict(crm).ok
    with pytest.raises(Conflict, match="append-only"):
        with crm.transaction():
            connection(crm.db).execute(sa.delete(audit_log))
    crm.engine.dispose()
