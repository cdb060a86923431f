"""The outbox worker: claims messages with leases, delivers them outside any
transaction, records each result, retries with backoff and gives up (``dead``).

A pass is

1. a short claim transaction: the oldest due messages (``queued`` whose
   ``next_attempt_at`` has come, or ``sending`` whose lease expired) are marked
   ``sending``, their attempt counted, ``claimed_by`` this worker and
   ``lease_until`` now + ``[outbox] lease_seconds``. On PostgreSQL the rows are
   picked with ``SELECT ... FOR UPDATE SKIP LOCKED``, so concurrent workers take
   different messages without waiting for each other; on SQLite the write
   transaction (``BEGIN IMMEDIATE``) lets one claim run at a time, which is as
   safe and, with one database file, as fast as it gets;
2. the channel call for each claimed message, outside any transaction, with the
   message's idempotency key;
3. a short transaction per message recording the result, only if this worker
   still holds the lease for that attempt: ``sent``; or back to ``queued`` with
   ``next_attempt_at`` = now + backoff (``[outbox] backoff_seconds``, doubled per
   attempt, at most ``backoff_max_seconds``); or ``dead`` after
   ``[outbox] max_attempts``.

A worker killed between 1 and 3 loses nothing: its lease expires and another
worker claims the message again, with the same key (a channel that dedupes on
the key delivers it once). A message whose lease expired on its last allowed
attempt is not tried again (the outcome is unknown): it is ``dead`` with
"delivery interrupted". Claims and results are delivery bookkeeping: they are
not written to the audit trail (queueing a message is).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

import attrs
from sqlalchemy import and_, func, or_, select, update

from crmcore.channels import build_channels, rules
from crmcore.entities import Message
from crmcore.errors import AccessDenied, NotFound, ValidationError
from crmcore.registry import Channel
from crmcore.schema import messages
from crmcore.services import rows as make
from crmcore.services.logsink import LogSink
from crmcore.storage._driver import connection

COMMAND = "worker"


def worker_name(suffix: str | int | None = None) -> str:
    """A name unique to this process (host and pid), for ``claimed_by``."""
    base = f"{socket.gethostname()}:{os.getpid()}"
    return base if suffix is None else f"{base}:{suffix}"


@attrs.define
class PassResult:
    """What one worker pass did."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0  # attempts that failed (the message waits for its next attempt or is dead)
    dead: int = 0
    interrupted: int = 0  # given up: their last attempt's lease ran out
    held: int = 0  # quiet hours began since they were queued: back to queued until they end
    cancelled: int = 0  # consent withdrawn or a frequency cap filled since they were queued

    def add(self, other: PassResult) -> None:
        for field in attrs.fields(PassResult):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def to_json(self) -> dict[str, int]:
        return attrs.asdict(self)


def require_sender(crm: Any) -> None:
    """Only a principal with 'admin' (the system, an admin) delivers the outbox."""
    with crm.transaction(write=False, command=COMMAND):
        principal = crm.db.principal
    if not principal.can("admin"):
        raise AccessDenied(f"{principal.key} may not send the outbox: needs 'admin'")


class Worker:
    """One delivering loop over the outbox, with its own CRM (one transaction at
    a time) and name. ``run_pass`` claims and delivers one batch; ``drain``
    passes until nothing is due or ``stop`` is set (SIGTERM): the batch in hand
    is always finished first."""

    def __init__(
        self,
        crm: Any,
        *,
        name: str | None = None,
        batch_size: int | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.crm = crm
        self.name = name or worker_name()
        settings = crm.config.outbox or {}
        self.max_attempts: int = settings.get(
            "max_attempts", crm.config.core["outbox_max_attempts"]
        )
        self.backoff = dt.timedelta(seconds=settings.get("backoff_seconds", 30))
        self.backoff_max = dt.timedelta(seconds=settings.get("backoff_max_seconds", 3600))
        self.lease = dt.timedelta(seconds=settings.get("lease_seconds", 300))
        self.batch_size: int = batch_size or settings.get("batch_size", 20)
        self.stop = stop or threading.Event()
        declared: dict[str, Channel] = dict(crm.plugins.declared.get("channel", {}))
        # [channels.NAME] of crm.toml, each replaced by a plugin's channel of the same name
        configured = build_channels(crm.config, crm.clock, replaced=declared)
        self.channels: dict[str, Channel] = {**configured.by_name, **declared}
        self.event_streams = configured.event_streams
        self.fallback = LogSink(crm.config.core["outbox_path"]).channel()

    # -- claim -----------------------------------------------------------------
    def claim(self, limit: int | None = None) -> tuple[list[tuple[Message, Any]], int]:
        """Claim up to ``limit`` due messages (default: the batch size) in one
        short transaction; the claimed messages with their payloads, and how
        many interrupted last attempts were given up."""
        crm = self.crm
        with crm.transaction(command=COMMAND):
            conn = connection(crm.db)
            now = crm.now()
            expired = or_(messages.c.lease_until.is_(None), messages.c.lease_until < now)
            interrupted = conn.execute(
                update(messages)
                .where(
                    messages.c.status == "sending",
                    expired,
                    messages.c.attempts >= self.max_attempts,
                )
                .values(
                    status="dead",
                    last_error="delivery interrupted",
                    claimed_by=None,
                    lease_until=None,
                )
            ).rowcount
            due = (
                select(messages.c.id)
                .where(
                    or_(
                        and_(
                            messages.c.status == "queued",
                            or_(
                                messages.c.next_attempt_at.is_(None),
                                messages.c.next_attempt_at <= now,
                            ),
                            rules.due(now),  # not held by quiet hours
                        ),
                        and_(messages.c.status == "sending", expired),
                    )
                )
                .order_by(messages.c.id)
                .limit(limit or self.batch_size)
                .with_for_update(skip_locked=True)
            )
            rows = conn.execute(
                update(messages)
                .where(messages.c.id.in_(due.scalar_subquery()))
                .values(
                    status="sending",
                    attempts=messages.c.attempts + 1,
                    attempted_at=now,
                    claimed_by=self.name,
                    lease_until=now + self.lease,
                )
                .returning(*messages.c)
            ).all()
        rows = sorted(rows, key=lambda r: r.id)
        return [(make.message(r), r.payload) for r in rows], interrupted

    # -- the rules once more, deliver and record ---------------------------------
    def admit(self, message: Message) -> str | None:
        """The messaging rules again, just before delivery (:func:`crmcore.channels.rules.recheck`):
        ``"held"`` (quiet hours began: back to queued until they end) or
        ``"cancelled"`` (consent withdrawn, a cap filled) and the claim given
        back without counting an attempt; None to deliver it."""
        if message.channel == "event":
            return None
        crm = self.crm
        with crm.transaction(command=COMMAND):
            conn = connection(crm.db)
            this = messages.c.id == message.id
            mine = and_(this, messages.c.claimed_by == self.name, messages.c.status == "sending")
            if not conn.execute(update(messages).where(mine).values(status="queued")).rowcount:
                return None  # the lease was taken over: record() will say so
            verdict = rules.recheck(crm, message)
            if verdict is None:
                conn.execute(update(messages).where(this).values(status="sending"))
                return None
            conn.execute(
                update(messages)
                .where(this)
                .values(attempts=messages.c.attempts - 1, claimed_by=None, lease_until=None)
            )
        return verdict

    def deliver(self, message: Message, payload: Any) -> tuple[str | None, str | None]:
        """Hand ``message`` to its channel (or, for an after-commit event, to the
        ``crm_after_commit`` hooks and the configured event streams); the
        one-line error (None on success) and the gateway's id for it, when the
        channel returned one."""
        try:
            if message.channel == "event":
                self.crm.hook.crm_after_commit(event=message, payload=dict(payload or {}))
                for stream in self.event_streams:
                    stream.send(message, message.idempotency_key)
                return None, None
            answer = self.channels.get(message.channel, self.fallback).send(
                message, message.idempotency_key
            )
        except Exception as e:  # a channel failure must not stop the others
            return f"{type(e).__name__}: {e}".splitlines()[0][:500], None
        return None, answer[:128] if isinstance(answer, str) else None

    def record(self, message: Message, error: str | None, provider_id: str | None = None) -> str:
        """Record the outcome of the attempt this worker claimed; the new status
        ("lost" when the lease was taken over meanwhile and nothing was written)."""
        crm = self.crm
        attempt = message.attempts
        with crm.transaction(command=COMMAND):
            now = crm.now()
            values: dict[str, Any] = {"claimed_by": None, "lease_until": None}
            if error is None:
                values |= {"status": "sent", "sent_at": now, "last_error": None}
                if provider_id is not None:
                    values["provider_id"] = provider_id
            elif attempt >= self.max_attempts:
                values |= {"status": "dead", "last_error": error}
            else:
                wait = min(self.backoff * 2 ** (attempt - 1), self.backoff_max)
                values |= {"status": "queued", "last_error": error, "next_attempt_at": now + wait}
            done = connection(crm.db).execute(
                update(messages)
                .where(
                    messages.c.id == message.id,
                    messages.c.claimed_by == self.name,
                    messages.c.attempts == attempt,
                    messages.c.status == "sending",
                )
                .values(**values)
            ).rowcount
        return values["status"] if done else "lost"

    def run_pass(self, limit: int | None = None) -> PassResult:
        """Claim one batch and deliver all of it (a stop request waits for it)."""
        claimed, interrupted = self.claim(limit)
        result = PassResult(claimed=len(claimed), interrupted=interrupted, dead=interrupted)
        for message, payload in claimed:
            verdict = self.admit(message)
            if verdict is not None:
                result.held += verdict == "held"
                result.cancelled += verdict == "cancelled"
                continue
            error, provider_id = self.deliver(message, payload)
            status = self.record(message, error, provider_id)
            if status == "sent":
                result.sent += 1
            elif status in ("queued", "dead"):
                result.failed += 1
                result.dead += status == "dead"
        return result

    def drain(self, limit: int | None = None) -> PassResult:
        """Passes until nothing is due, ``limit`` messages were claimed, or a stop
        was requested."""
        total = PassResult()
        while not self.stop.is_set():
            left = None if limit is None else limit - total.claimed
            if left is not None and left <= 0:
                break
            batch = self.run_pass(min(left, self.batch_size) if left else None)
            total.add(batch)
            if batch.claimed == 0:
                break
        return total


def run_workers(
    crm: Any,
    *,
    concurrency: int = 1,
    once: bool = False,
    stop: threading.Event | None = None,
    idle_seconds: float = 1.0,
    on_pass: Callable[[PassResult], None] | None = None,
) -> PassResult:
    """``concurrency`` workers in threads of this process, each with its own CRM
    (sharing the engine): with ``once`` each drains what is due and stops;
    otherwise they poll every ``idle_seconds`` when idle until ``stop`` is set."""
    require_sender(crm)
    stop = stop or threading.Event()
    total = PassResult()
    lock = threading.Lock()
    errors: list[BaseException] = []

    def loop(index: int) -> None:
        worker = Worker(crm._clone(), name=worker_name(index), stop=stop)
        try:
            while not stop.is_set():
                got = worker.drain()
                with lock:
                    total.add(got)
                if on_pass is not None and got.claimed:
                    on_pass(got)
                if once:
                    return
                stop.wait(idle_seconds)
        except BaseException as e:  # reported by the caller, after the others stop
            errors.append(e)
            stop.set()

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.2)  # short joins: the main thread keeps handling signals
    if errors:
        raise errors[0]
    return total


# -- dead letters --------------------------------------------------------------
def dead_messages(crm: Any) -> list[Message]:
    """The messages given up (``dead``), oldest first; needs 'admin'."""
    with crm.transaction(write=False, command="outbox dead"):
        _require_admin(crm, "read the dead letters")
        rows = connection(crm.db).execute(
            select(messages).where(messages.c.status == "dead").order_by(messages.c.id)
        ).all()
    return [make.message(r) for r in rows]


def retry_messages(crm: Any, ids: list[int] | None) -> int:
    """Queue dead messages again (those of ``ids``, or all when None) with a
    fresh count of attempts, due now; how many. An id that is not dead is a
    :class:`NotFound` / :class:`ValidationError` naming it."""
    with crm.transaction(command="outbox retry"):
        _require_admin(crm, "retry messages")
        conn = connection(crm.db)
        stmt = update(messages).where(messages.c.status == "dead")
        if ids is not None:
            found = {
                r.id: r.status
                for r in conn.execute(
                    select(messages.c.id, messages.c.status).where(messages.c.id.in_(ids))
                )
            }
            for mid in ids:
                if mid not in found:
                    raise NotFound(f"message {mid} not found")
                if found[mid] != "dead":
                    raise ValidationError(
                        f"message {mid} is {found[mid]}, not dead; only dead messages are retried"
                    )
            stmt = stmt.where(messages.c.id.in_(ids))
        return int(
            conn.execute(
                stmt.values(
                    status="queued",
                    attempts=0,
                    next_attempt_at=None,
                    claimed_by=None,
                    lease_until=None,
                )
            ).rowcount
        )


def outbox_counts(crm: Any) -> dict[str, int]:
    """Messages per status (for ``crm worker --json`` and monitoring)."""
    with crm.transaction(write=False, command=COMMAND):
        rows = connection(crm.db).execute(
            select(messages.c.status, func.count()).group_by(messages.c.status)
        ).all()
    return {status: int(n) for status, n in rows}


def _require_admin(crm: Any, what: str) -> None:
    principal = crm.db.principal
    if not principal.can("admin"):
        raise AccessDenied(f"{principal.key} may not {what}: needs 'admin'")
