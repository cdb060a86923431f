"""The scheduler: runs each job when its schedule falls due, each (job, tick)
exactly once, however many schedulers run and however often they restart.

A pass, at ``now`` (the CRM's clock, ``crm.now()``; ``--at`` for one pass):

1. for every job, the latest tick at or before now (see
   :mod:`crmcore.ops.schedules`). Its record in ``job_ticks`` (unique on
   ``(job, tick_at)``) is inserted in a transaction of its own *before* the
   run: the scheduler whose insert commits runs the tick, any other finds the
   row and moves on. A tick seen too late (the scheduler was down) follows the
   job's catch-up policy: ``run_once`` runs it (the latest missed tick only,
   never the backlog), ``skip`` records it as ``skipped``;
2. the job runs as of the tick's local time in one transaction, which also
   records the tick ``ok`` and the run in ``job_runs``: the job's effects and
   "done" commit together, so a scheduler killed mid-run leaves a tick whose
   lease runs out and which the next pass runs again from scratch;
3. a failure rolls the job back alone, and the tick records the one-line error
   and, below the job's ``attempts``, ``retry`` with ``next_attempt_at`` after
   the job's backoff (doubled per attempt); passes run due retries too.

On PostgreSQL only the scheduler holding the advisory lock
(``pg_try_advisory_lock``, one per database schema) runs ticks; the others wait
as standbys and take over when the leader's connection goes. On SQLite there
is no lock: the unique tick record alone keeps each tick to one run.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

from sqlalchemy import and_, insert, or_, select, text, update
from sqlalchemy.engine import Connection

from crmcore.clock import FixedClock
from crmcore.errors import Conflict, CRMError
from crmcore.ops.schedules import UTC, Plan, plans, to_local, to_utc, zone_of
from crmcore.ops.worker import worker_name
from crmcore.schema import job_runs, job_ticks
from crmcore.services.jobs import one_line, plain
from crmcore.storage._driver import connection

TICK_LEASE = dt.timedelta(hours=1)  # a tick "running" longer than this is taken over
COMMAND = "scheduler"


class Scheduler:
    """Runs due ticks for one CRM (acting as the system or an admin). ``stop``
    (set by SIGTERM) is checked between jobs: the tick in hand is finished."""

    def __init__(
        self,
        crm: Any,
        *,
        name: str | None = None,
        stop: threading.Event | None = None,
        leader_lock: bool = True,
    ) -> None:
        self.crm = crm
        self.name = name or worker_name("scheduler")
        self.stop = stop or threading.Event()
        self.plans: dict[str, Plan] = plans(crm.jobs.list(), crm.config.jobs, crm.config.core)
        self.zone = zone_of(crm.config.core.get("timezone"))
        self.use_leader_lock = leader_lock
        self._leader: Connection | None = None
        self._checked = False

    # -- leadership (PostgreSQL) -------------------------------------------------
    def is_leader(self) -> bool:
        """Whether this scheduler may run ticks: always on SQLite; on PostgreSQL
        once it holds the scheduler's advisory lock (tried again each call)."""
        if not self.use_leader_lock or self.crm.engine.dialect.name != "postgresql":
            return True
        if self._leader is not None:
            return True
        conn = self.crm.engine.connect()
        got = conn.execute(
            text("SELECT pg_try_advisory_lock(hashtext('crmcore.scheduler:' || current_schema()))")
        ).scalar()
        conn.commit()  # a connection-level lock: it outlives the transaction that took it
        if got:
            self._leader = conn
            return True
        conn.close()
        return False

    def close(self) -> None:
        """Give up leadership (the lock goes with its connection)."""
        if self._leader is not None:
            self._leader.close()
            self._leader = None

    # -- one pass --------------------------------------------------------------
    def run_pass(self, now: dt.datetime | None = None) -> list[dict[str, Any]]:
        """Run what is due at ``now`` (default ``crm.now()``, local time): the
        latest tick of every job and the retries whose time has come. One result
        per tick handled: job, tick (UTC and local), status, error, summary."""
        if not self._checked:
            self.crm.jobs.require_runner()  # the system or an admin; refused before any run
            self._checked = True
        if not self.is_leader():
            return []
        now_utc = to_utc(now or self.crm.now(), self.zone)
        results: list[dict[str, Any]] = []
        for plan in self.plans.values():
            if self.stop.is_set():
                return results
            tick = plan.latest_tick(now_utc)
            late = now_utc - tick > plan.late_after(tick)
            if late and plan.catch_up == "skip":
                if self._claim_new(plan, tick, now_utc, status="skipped"):
                    results.append(self._result(plan, tick, "skipped", late=True))
                continue
            if self._claim_new(plan, tick, now_utc, status="running"):
                results.append(self._run(plan, tick, 1, now_utc, late=late))
        for plan, tick, attempt in self._due_retries(now_utc):
            if self.stop.is_set():
                break
            results.append(self._run(plan, tick, attempt, now_utc, late=False))
        return results

    def _claim_new(
        self, plan: Plan, tick: dt.datetime, now_utc: dt.datetime, *, status: str
    ) -> bool:
        """Insert the (job, tick) record in its own transaction; False if it exists."""
        crm = self.crm
        try:
            with crm.transaction(command=COMMAND):
                conn = connection(crm.db)
                if conn.execute(
                    select(job_ticks.c.id).where(
                        job_ticks.c.job == plan.name, job_ticks.c.tick_at == tick
                    )
                ).first():
                    return False
                running = status == "running"
                conn.execute(
                    insert(job_ticks).values(
                        job=plan.name,
                        tick_at=tick,
                        status=status,
                        attempts=1 if running else 0,
                        claimed_by=self.name if running else None,
                        lease_until=now_utc + TICK_LEASE if running else None,
                        started_at=now_utc if running else None,
                        finished_at=None if running else now_utc,
                    )
                )
        except Conflict:  # another scheduler inserted it first
            return False
        return True

    def _due_retries(self, now_utc: dt.datetime) -> list[tuple[Plan, dt.datetime, int]]:
        """Claim the ticks due again (``retry`` whose time has come, ``running``
        whose lease ran out), each by a conditional update in its own
        transaction; the claimed ones with their attempt number."""
        crm = self.crm
        with crm.transaction(write=False, command=COMMAND):
            rows = connection(crm.db).execute(
                select(
                    job_ticks.c.id,
                    job_ticks.c.job,
                    job_ticks.c.tick_at,
                    job_ticks.c.attempts,
                    job_ticks.c.status,
                )
                .where(
                    or_(
                        and_(job_ticks.c.status == "retry", job_ticks.c.next_attempt_at <= now_utc),
                        and_(job_ticks.c.status == "running", job_ticks.c.lease_until < now_utc),
                    ),
                    job_ticks.c.job.in_(list(self.plans)),
                )
                .order_by(job_ticks.c.tick_at, job_ticks.c.job)
            ).all()
        claimed = []
        for row in rows:
            with crm.transaction(command=COMMAND):
                got = connection(crm.db).execute(
                    update(job_ticks)
                    .where(
                        job_ticks.c.id == row.id,
                        job_ticks.c.status == row.status,
                        job_ticks.c.attempts == row.attempts,
                    )
                    .values(
                        status="running",
                        attempts=row.attempts + 1,
                        claimed_by=self.name,
                        lease_until=now_utc + TICK_LEASE,
                        started_at=now_utc,
                    )
                ).rowcount
            if got:
                claimed.append((self.plans[row.job], row.tick_at, row.attempts + 1))
        return claimed

    def _run(
        self, plan: Plan, tick: dt.datetime, attempt: int, now_utc: dt.datetime, *, late: bool
    ) -> dict[str, Any]:
        """Run ``plan``'s job for ``tick``; its effects and the tick's ``ok``
        commit together, a failure is recorded after the rollback."""
        when = to_local(tick, plan.zone)
        at_crm = self.crm._clone(clock=FixedClock(when))
        started = time.monotonic()  # for the duration only, never for logic
        mine = and_(
            job_ticks.c.job == plan.name,
            job_ticks.c.tick_at == tick,
            job_ticks.c.attempts == attempt,
            job_ticks.c.claimed_by == self.name,
        )
        try:
            with at_crm.transaction(command=f"{COMMAND} {plan.name}"):
                summary = plain(plan.job.run(at_crm, when) or {})
                conn = connection(at_crm.db)
                conn.execute(
                    job_runs.insert().values(
                        job=plan.name, as_of=when, finished_at=when, summary=summary
                    )
                )
                conn.execute(
                    update(job_ticks)
                    .where(mine)
                    .values(
                        status="ok",
                        summary=summary,
                        error=None,
                        finished_at=now_utc,
                        lease_until=None,
                        duration_ms=_ms(started),
                    )
                )
        except Exception as e:  # one job's failure: rolled back, recorded, retried
            error = one_line(e)
            retry = attempt < plan.attempts
            try:
                self._record_failure(plan, tick, attempt, now_utc, error, retry, started)
            except CRMError as unrecorded:  # the database refused even that: say so
                error += f" (not recorded: {one_line(unrecorded)})"
            return self._result(
                plan, tick, "retry" if retry else "failed", late=late, attempt=attempt, error=error
            )
        return self._result(plan, tick, "ok", late=late, attempt=attempt, summary=summary)

    def _record_failure(
        self,
        plan: Plan,
        tick: dt.datetime,
        attempt: int,
        now_utc: dt.datetime,
        error: str,
        retry: bool,
        started: float,
    ) -> None:
        """Record a failed run on its tick and in ``job_runs``, after the rollback."""
        mine = and_(
            job_ticks.c.job == plan.name,
            job_ticks.c.tick_at == tick,
            job_ticks.c.attempts == attempt,
            job_ticks.c.claimed_by == self.name,
        )
        when = to_local(tick, plan.zone)
        with self.crm.transaction(command=f"{COMMAND} {plan.name}"):
            conn = connection(self.crm.db)
            conn.execute(
                update(job_ticks)
                .where(mine)
                .values(
                    status="retry" if retry else "failed",
                    error=error,
                    next_attempt_at=now_utc + plan.retry_delay(attempt) if retry else None,
                    finished_at=now_utc,
                    lease_until=None,
                    duration_ms=_ms(started),
                )
            )
            conn.execute(
                job_runs.insert().values(
                    job=plan.name,
                    as_of=when,
                    finished_at=when,
                    summary={"failed": True, "error": error},
                )
            )

    def _result(self, plan: Plan, tick: dt.datetime, status: str, **more: Any) -> dict[str, Any]:
        return {
            "job": plan.name,
            "tick": tick.replace(tzinfo=UTC).isoformat(),
            "tick_local": tick.replace(tzinfo=UTC).astimezone(plan.zone).isoformat(),
            "status": status,
            **{k: v for k, v in more.items() if v is not None},
        }

    # -- the loop --------------------------------------------------------------
    def loop(self, *, interval: float = 30.0) -> int:
        """Passes every ``interval`` seconds until ``stop`` is set; ticks run."""
        ran = 0
        try:
            while not self.stop.is_set():
                ran += len(self.run_pass())
                self.stop.wait(interval)
        finally:
            self.close()
        return ran


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def job_table(crm: Any) -> list[dict[str, Any]]:
    """Every job with its plugin, schedule, zone, policy, next tick and last run
    (``crm jobs list``)."""
    found = plans(crm.jobs.list(), crm.config.jobs, crm.config.core)
    zone_name = crm.config.core.get("timezone") or "local"
    now_utc = to_utc(crm.now(), zone_of(crm.config.core.get("timezone")))
    with crm.transaction(write=False, command="jobs list"):
        last: dict[str, Any] = {}
        for tick in connection(crm.db).execute(
            select(job_ticks).where(job_ticks.c.status != "skipped").order_by(job_ticks.c.tick_at)
        ):
            last[tick.job] = tick
    out = []
    for name, plan in found.items():
        row = last.get(name)
        out.append(
            {
                "name": name,
                "plugin": crm.plugins.owners[("job", name)],
                "zone": zone_name,
                **plan.to_json(now_utc),
                "last_tick": None if row is None else row.tick_at.replace(tzinfo=UTC),
                "last_status": None if row is None else row.status,
                "description": plan.job.description,
            }
        )
    return out


def history(crm: Any, *, job: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The latest tick records, newest first (``crm jobs history``): tick,
    status, attempts, duration, summary or error. Needs 'admin' or 'audit'."""
    from crmcore.errors import AccessDenied, NotFound

    if job is not None and job not in crm.jobs.list():
        raise NotFound(f"unknown job {job!r}; jobs: {', '.join(sorted(crm.jobs.list())) or 'none'}")
    with crm.transaction(write=False, command="jobs history"):
        p = crm.db.principal
        if not (p.can("admin") or p.can("audit")):
            raise AccessDenied(f"{p.key} may not read the job history: needs 'admin' or 'audit'")
        stmt = select(job_ticks).order_by(job_ticks.c.tick_at.desc(), job_ticks.c.id.desc())
        if job is not None:
            stmt = stmt.where(job_ticks.c.job == job)
        rows = connection(crm.db).execute(stmt.limit(limit)).all()
    return [
        {
            "job": r.job,
            "tick": r.tick_at.replace(tzinfo=UTC),
            "status": r.status,
            "attempts": r.attempts,
            "started_at": None if r.started_at is None else r.started_at.replace(tzinfo=UTC),
            "duration_ms": r.duration_ms,
            "next_attempt_at": None
            if r.next_attempt_at is None
            else r.next_attempt_at.replace(tzinfo=UTC),
            "summary": r.summary,
            "error": r.error,
        }
        for r in rows
    ]
