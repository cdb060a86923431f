"""crm worker: leases, no double delivery between workers, SIGKILL and SIGTERM,
backoff, dead letters and crm outbox retry/dead."""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import select

from crmcore import Channel, hookimpl
from crmcore.access import SYSTEM
from crmcore.errors import AccessDenied
from crmcore.ops.worker import Worker, dead_messages, retry_messages, run_workers
from crmcore.schema import messages
from crmcore.service import CRM
from crmcore.storage._driver import connection


class Receiver:
    """The receiving side: counts every delivery by idempotency key; fails the
    first ``failures`` attempts (all, with -1)."""

    def __init__(self, failures: int = 0, pause: float = 0.0) -> None:
        self.got: collections.Counter[str] = collections.Counter()
        self.failures = failures
        self.pause = pause
        self.lock = threading.Lock()

    @hookimpl
    def crm_delivery_channels(self):
        def send(message, key):
            time.sleep(self.pause)
            with self.lock:
                if self.failures:
                    self.failures -= 1
                    raise ConnectionError("gateway down")
                self.got[key] += 1

        return [Channel(name="sms", send=send)]


def _queue(crm, n: int) -> list[int]:
    return [
        crm.messages.enqueue("sms", body=f"m{i}", to=f"+86138{i:08d}", transactional=True).id
        for i in range(n)
    ]


def test_two_workers_never_deliver_the_same_message(crm_factory, crm_clock):
    receiver = Receiver(pause=0.005)
    crm = crm_factory(
        plugins=["rx"], extra_plugins={"rx": receiver}, config={"outbox": {"batch_size": 3}}
    )
    _queue(crm, 40)
    keys = {m.idempotency_key for m in crm.messages.outbox()}
    other = CRM(crm.config, clock=crm_clock, extra_plugins={"rx": receiver}, principal=SYSTEM)
    start = threading.Barrier(2)
    claimed: dict[str, int] = {}

    def drain(c, name):
        start.wait()
        claimed[name] = Worker(c, name=name).drain().claimed

    threads = [
        threading.Thread(target=drain, args=(c, f"w{i}")) for i, c in enumerate((crm, other))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    other.engine.dispose()
    assert set(receiver.got) == keys
    assert set(receiver.got.values()) == {1}  # each message once, on the receiving side
    assert sum(claimed.values()) == 40
    assert [m.status for m in crm.messages.outbox()] == ["sent"] * 40


def test_an_expired_lease_is_claimed_again_and_the_old_holder_records_nothing(
    crm_factory, crm_clock
):
    receiver = Receiver()
    crm = crm_factory(plugins=["rx"], extra_plugins={"rx": receiver})
    _queue(crm, 1)
    stalled = Worker(crm, name="stalled")
    ((message, _),) = stalled.claim()[0]
    assert Worker(crm, name="other").claim()[0] == []  # leased: nobody else takes it
    crm_clock.advance(seconds=301)  # the default lease is 300 s
    taker = Worker(crm, name="taker")
    assert taker.run_pass().sent == 1
    assert stalled.record(message, None) == "lost"
    sent = crm.messages.outbox()[0]
    assert (sent.status, sent.attempts) == ("sent", 2)


def test_failures_back_off_then_go_dead_and_can_be_retried(crm_factory, crm_clock, crm_cli):
    receiver = Receiver(failures=-1)
    crm = crm_factory(
        plugins=["rx"],
        extra_plugins={"rx": receiver},
        config={"outbox": {"max_attempts": 3, "backoff_seconds": 10}},
    )
    (mid,) = _queue(crm, 1)
    worker = Worker(crm)
    waits = []
    for _ in range(3):
        assert worker.run_pass().claimed == 1
        with crm.transaction(write=False):
            row = connection(crm.db).execute(select(messages).where(messages.c.id == mid)).one()
        if row.next_attempt_at is not None and row.status == "queued":
            waits.append(row.next_attempt_at - crm.now())
            assert worker.run_pass().claimed == 0  # not before its time
            crm_clock.set(row.next_attempt_at)
    assert waits == [dt.timedelta(seconds=10), dt.timedelta(seconds=20)]
    (dead,) = dead_messages(crm)
    assert (dead.id, dead.status, dead.attempts, dead.last_error) == (
        mid,
        "dead",
        3,
        "ConnectionError: gateway down",
    )
    assert worker.run_pass().claimed == 0  # dead stays dead
    listed = crm_cli("outbox", "dead", "--json", crm=crm).json()
    assert [m["id"] for m in listed] == [mid]
    refused = crm_cli("outbox", "retry", "--json", crm=crm)
    assert refused.exit_code == 1 and "give a message ID or --all-dead" in refused.stderr
    assert crm_cli("outbox", "retry", str(mid), "--json", crm=crm).json() == {"queued": 1}
    again = crm_cli("outbox", "retry", str(mid), "--json", crm=crm)
    assert again.exit_code == 1 and f"message {mid} is queued, not dead" in again.stderr
    receiver.failures = 0
    assert worker.run_pass().sent == 1
    assert receiver.got == {dead.idempotency_key: 1}


def test_retry_all_dead(crm_factory):
    receiver = Receiver(failures=-1)
    crm = crm_factory(
        plugins=["rx"], extra_plugins={"rx": receiver}, config={"outbox": {"max_attempts": 1}}
    )
    _queue(crm, 3)
    assert Worker(crm).drain().dead == 3
    assert retry_messages(crm, None) == 3
    assert [m.status for m in crm.messages.outbox()] == ["queued"] * 3


def test_a_rep_may_not_deliver_read_or_retry_the_outbox(crm_factory):
    crm = crm_factory()
    crm.staff.add("rep1", "Rep One", roles=["rep"])
    rep = crm.as_("rep1")
    with pytest.raises(AccessDenied):
        run_workers(rep, once=True)
    with pytest.raises(AccessDenied):
        dead_messages(rep)
    with pytest.raises(AccessDenied):
        retry_messages(rep, None)
    with pytest.raises(AccessDenied):
        rep.messages.send_outbox()


# -- real worker processes ------------------------------------------------------

FILE_SINK = """
import os, time
from crmcore import Channel, hookimpl
from crmcore.services.logsink import LogSink

def _channel():
    sink = LogSink(os.environ["SINK_LOG"])

    def send(message, key):
        sink.send(message, key)  # one line per key: a retried message is not written twice
        time.sleep(float(os.environ.get("SINK_PAUSE", "0")))

    return Channel(name="sms", send=send)

@hookimpl
def crm_delivery_channels():
    return [_channel()]
"""


@pytest.fixture
def worker_cmd(crm, tmp_path):
    """A crm.toml for a file-sink plugin, and how to start ``crm worker`` on it."""
    site = tmp_path / "site"
    dist = site / "filesink-0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "filesink.py").write_text(FILE_SINK)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: filesink\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[crmcore.plugins]\nfilesink = filesink\n")
    toml = tmp_path / "crm.toml"
    toml.write_text(
        f'[crm]\ndatabase = "{crm.config.database}"\nplugins = ["filesink"]\n'
        "[outbox]\nbatch_size = 4\nlease_seconds = 1\nmax_attempts = 10\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env["PYTHONPATH"] = str(site) + os.pathsep + env.get("PYTHONPATH", "")
    env["SINK_LOG"] = str(tmp_path / "sink.log")

    def start(*args: str, pause: float = 0.0) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "crmcore", "--config", str(toml), "worker", *args, "--json"],
            env={**env, "SINK_PAUSE": str(pause)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    return start, tmp_path / "sink.log"


def _delivered(log) -> list[int]:
    return [json.loads(line)["id"] for line in log.read_text().splitlines()] if log.exists() else []


def _wait_for(predicate, proc, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, proc.communicate()


def test_a_worker_killed_mid_batch_loses_nothing_and_sends_nothing_twice(crm, worker_cmd):
    start, log = worker_cmd
    ids = _queue(crm, 10)
    proc = start(pause=5)
    _wait_for(lambda: len(_delivered(log)) >= 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert len(crm.messages.outbox(status="sending")) == 4  # the batch in hand, leased
    time.sleep(2.1)  # the lease (1 s) runs out; the clock counts whole seconds
    done = start("--once")
    out, err = done.communicate(timeout=60)
    assert done.returncode == 0, err
    assert sorted(_delivered(log)) == ids  # each once, the killed one included
    assert [m.status for m in crm.messages.outbox()] == ["sent"] * 10
    assert json.loads(out)["sent"] == 10


def test_sigterm_finishes_the_batch_in_hand_then_exits(crm, worker_cmd):
    start, log = worker_cmd
    ids = _queue(crm, 10)
    proc = start(pause=0.3)
    _wait_for(lambda: len(_delivered(log)) >= 1, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    statuses = [m.status for m in crm.messages.outbox()]
    assert statuses == ["sent"] * 4 + ["queued"] * 6  # the claimed batch, no more
    assert sorted(_delivered(log)) == ids[:4]
    last = json.loads(out.strip().splitlines()[-1])
    assert (last["stopped"], last["sent"], last["claimed"]) == (True, 4, 4)
