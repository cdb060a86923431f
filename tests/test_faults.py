"""Faults: a process killed mid-job or mid-import leaves a consistent database, and
concurrent writers either both succeed or get a clear retryable error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from crmcore.schema import customer_stats, customers, messages, transactions

JOB_SCRIPT = """
import datetime as dt, sys, time, pathlib
from crmcore import CRM, Job, hookimpl
from crmcore.access import SYSTEM
from crmcore.config import from_dict

marker = pathlib.Path(sys.argv[2])

def greet_everyone(crm, at):
    ids = [c.id for c in crm.customers.list()]
    for i, cid in enumerate(ids):
        crm.messages.enqueue("sms", body="season's greetings", customer=cid, key=f"greet:{at:%Y}:{cid}")
        if i == len(ids) // 2 and sys.argv[3] == "slow":
            marker.write_text("halfway")
            time.sleep(60)
    return {"queued": len(ids)}

class Greeter:
    @hookimpl
    def crm_jobs(self):
        return [Job(name="greeter.season", run=greet_everyone)]

crm = CRM(from_dict({"crm": {"database": sys.argv[1], "plugins": ["greeter"]}}),
          extra_plugins={"greeter": Greeter()}, principal=SYSTEM)
print(crm.jobs.run(["greeter.season"], at=dt.datetime(2026, 12, 24, 9)))
"""


def count(crm, table, *where):
    with crm.transaction(write=False):
        return crm.db.scalar(sa.select(sa.func.count()).select_from(table).where(*where))


def wait_for(path: Path, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the child never got halfway"
        time.sleep(0.05)


def test_job_killed_midway_leaves_nothing_and_reruns_without_duplicates(crm, tmp_path):
    for i in range(40):
        crm.customers.add(f"C{i}", phone=f"1380000{i:04d}")
    script = tmp_path / "job.py"
    script.write_text(JOB_SCRIPT)
    marker = tmp_path / "halfway"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    proc = subprocess.Popen(
        [sys.executable, str(script), crm.config.database, str(marker), "slow"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_for(marker, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert count(crm, messages) == 0  # the job's transaction never committed
    done = subprocess.run(
        [sys.executable, str(script), crm.config.database, str(marker), "fast"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    again = subprocess.run(
        [sys.executable, str(script), crm.config.database, str(marker), "fast"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert count(crm, messages) == 40  # resumed once, never twice


IMPORT_SCRIPT = """
import sys, time, pathlib
from crmcore import CRM, hookimpl
from crmcore.access import SYSTEM
from crmcore.config import from_dict
from crmcore.importer import import_transactions

marker = pathlib.Path(sys.argv[3])

class Stall:
    batches = 0

    @hookimpl
    def crm_transaction_recorded_batch(self, crm, batch):
        Stall.batches += 1
        if Stall.batches == 3 and sys.argv[4] == "stall":
            marker.write_text("three batches in")
            time.sleep(60)

crm = CRM(from_dict({"crm": {"database": sys.argv[1], "plugins": ["stall"]}}),
          extra_plugins={"stall": Stall()}, principal=SYSTEM)
print(import_transactions(crm, sys.argv[2], batch_size=2000)["imported"])
"""


def test_import_killed_midway_is_all_or_nothing(crm, tmp_path):
    for i in range(20):
        crm.customers.add(f"C{i}", external_id=f"C{i}")
    csv = tmp_path / "tx.csv"
    with csv.open("w") as f:
        f.write("customer_external_id,occurred_at,amount,external_id\n")
        for n in range(20_000):
            f.write(f"C{n % 20},2026-01-{1 + n % 28:02d}T10:00:00,{n % 997}.50,T{n}\n")
    script = tmp_path / "imp.py"
    script.write_text(IMPORT_SCRIPT)
    marker = tmp_path / "marker"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    args = [sys.executable, str(script), crm.config.database, str(csv), str(marker)]
    proc = subprocess.Popen(
        [*args, "stall"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    wait_for(marker, proc)  # three batches (6,000 rows) written inside the open transaction
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert count(crm, transactions) == 0  # all or nothing
    done = subprocess.run([*args, "go"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "20000"
    again = subprocess.run([*args, "go"], env=env, capture_output=True, text=True, timeout=300)
    assert again.stdout.strip() == "0"  # re-import: the same transaction ids never count twice
    assert count(crm, transactions) == 20_000
    with crm.transaction(write=False):
        spend = crm.db.scalar(sa.select(sa.func.sum(transactions.c.amount_cents)))
    assert spend == sum((n % 997) * 100 + 50 for n in range(20_000))


def test_two_processes_writing_at_once_both_succeed_or_get_a_retryable_error(crm, tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(
        textwrap.dedent("""
        import sys
        from crmcore import CRM, RetryableError
        from crmcore.access import SYSTEM
        from crmcore.config import from_dict
        crm = CRM(from_dict({"crm": {"database": sys.argv[1]}}), principal=SYSTEM)
        ok = retry = 0
        for i in range(60):
            try:
                with crm.transaction():
                    c = crm.customers.add(f"{sys.argv[2]}-{i}")
                    crm.records.add_transaction(c, 100)
                ok += 1
            except RetryableError:
                retry += 1
        print(ok, retry)
    """)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), crm.config.database, name],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in "ab"
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        results.append(tuple(map(int, out.split())))
    committed = sum(ok for ok, _ in results)
    assert committed + sum(r for _, r in results) == 120
    assert count(crm, customers) == committed == count(crm, transactions)
    with crm.transaction(write=False):
        names = crm.db.all(sa.select(customers.c.name))
    assert len({n for (n,) in names}) == committed  # no lost or doubled write


def test_concurrent_sessions_in_one_process(crm):
    errors: list[BaseException] = []

    def work(tag: str) -> None:
        try:
            for i in range(25):
                c = crm.customers.add(f"{tag}{i}")
                crm.records.add_transaction(c, 10)
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    from crmcore import RetryableError

    assert all(isinstance(e, RetryableError) for e in errors)
    assert count(crm, customers) == count(crm, transactions) == 50 - len(errors)


def test_a_write_lock_held_beyond_the_busy_timeout_is_a_retryable_error(crm, crm_cli, monkeypatch):
    """SQLite's BEGIN IMMEDIATE waits for the busy timeout, then the operation is
    refused with the one-line retryable error (API and CLI), and nothing is written."""
    import sqlite3

    import pytest

    import crmcore.db
    import crmcore.storage.engine
    from crmcore import CRM, RetryableError
    from crmcore.access import SYSTEM

    if crm.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock")
    monkeypatch.setattr(crmcore.storage.engine, "SQLITE_BUSY_MS", 100)
    impatient = CRM(crm.config, clock=crm.clock, principal=SYSTEM)
    holder = sqlite3.connect(crm.config.database.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(RetryableError) as refused:
            impatient.customers.add("Ann")
        assert str(refused.value) == crmcore.db.BUSY_MESSAGE
        shown = crm_cli("customer", "add", "--name", "Ann", crm=impatient)
        assert (shown.exit_code, shown.stderr) == (1, f"error: {crmcore.db.BUSY_MESSAGE}\n")
        assert impatient.customers.list() == []  # reading is not blocked in WAL mode
    finally:
        holder.rollback()
        holder.close()
    assert impatient.customers.add("Ann").name == "Ann"
    impatient.engine.dispose()


def test_a_concurrent_repeat_of_an_external_id_returns_the_stored_transaction(crm_factory):
    """Two sessions record the same external transaction id at once: the second
    waits for the first, then gets its stored row, not a conflict."""
    import pytest

    from crmcore import hookimpl

    first_inserted = threading.Event()
    second_checked = threading.Event()

    class Race:
        @hookimpl
        def crm_validate_transaction(self, crm, transaction):
            if threading.current_thread().name == "second":
                second_checked.set()  # it looked for the id and did not see it

        @hookimpl
        def crm_transaction_recorded(self, crm, transaction):
            if threading.current_thread().name == "first":
                first_inserted.set()
                assert second_checked.wait(30)
                time.sleep(0.5)  # the second is now waiting on the unique key

    crm = crm_factory(plugins=["race"], extra_plugins={"race": Race()})
    if crm.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE): the second never races")
    c = crm.customers.add("Ann")
    got: dict[str, object] = {}

    def record(name: str) -> None:
        try:
            got[name] = crm.records.add_transaction(c, 1250, external_id="T-1")
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            got[name] = e

    first = threading.Thread(target=record, args=("first",), name="first")
    first.start()
    assert first_inserted.wait(30)
    second = threading.Thread(target=record, args=("second",), name="second")
    second.start()
    first.join(60)
    second.join(60)
    assert not isinstance(got["second"], BaseException), got["second"]
    assert got["first"] == got["second"]
    assert count(crm, transactions) == 1
    with crm.transaction(write=False):
        stats = crm.db.first(sa.select(customer_stats).where(customer_stats.c.customer_id == c.id))
    assert (stats.tx_count, stats.spend_cents) == (1, 1250)
