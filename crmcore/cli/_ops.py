"""crm scheduler / worker / jobs history / outbox retry|dead / inbox commands."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

import click

from crmcore.cli._app import JSON_OPTION, cli, emit, parse_at, pass_crm
from crmcore.cli._records import jobs, outbox
from crmcore.cli.params import Whole


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT while the block runs (the handlers
    before it are put back after): the loop finishes what it has in hand."""
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handle(signum: int, _frame: Any) -> None:
        stop.set()

    for sig in previous:
        signal.signal(sig, handle)
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _emit_line(data: Any, as_json: bool, human: Any) -> None:
    """One line of a long-running command: with --json a compact JSON document
    per line (JSON Lines), so a log collector reads each as it comes."""
    from crmcore.cli._app import masked_for_output, to_plain
    from crmcore.cli.output import to_json

    if as_json:
        click.echo(to_json(to_plain(masked_for_output(data)), indent=None))
    else:
        click.echo(human(data))


def _tick_line(r: dict[str, Any]) -> str:
    from crmcore.cli.output import summary_text

    head = f"{r['tick_local']}  {r['job']}: {r['status']}"
    if r.get("late") and r["status"] != "skipped":
        head += " (caught up)"
    if r.get("error"):
        return f"{head}: {r['error']}"
    if r.get("summary") is not None:
        return f"{head}: {summary_text(r['summary'])}"
    return head


@cli.command("scheduler")
@click.option("--once", is_flag=True, help="One pass over what is due, then exit.")
@click.option("--at", help="One pass as of this ISO date-time (implies --once).")
@click.option(
    "--interval", type=Whole(1), default=30, show_default=True, help="Seconds between passes."
)
@click.option(
    "--no-leader-lock",
    is_flag=True,
    help="PostgreSQL: run without the leader lock (the unique tick records alone).",
)
@JSON_OPTION
@pass_crm
def scheduler(
    crm: Any, once: bool, at: str | None, interval: int, no_leader_lock: bool, as_json: bool
) -> None:
    """Run the jobs on their schedules, each tick once.

    Safe to run on several machines: each (job, tick) is claimed once. A
    failing job is recorded and retried by its policy; the others still run.
    SIGTERM finishes the job in hand and exits. With --once (or --at) the exit
    status is 1 if a job failed, and --json prints one JSON document; running
    on, it prints one JSON line per tick."""
    from crmcore.ops.scheduler import Scheduler

    when = parse_at(at)
    with _stop_on_signals() as stop:
        runner = Scheduler(crm, stop=stop, leader_lock=not no_leader_lock)
        if once or when is not None:
            try:
                results = runner.run_pass(when)
                leader = runner.is_leader()
            finally:
                runner.close()
            emit(
                {"leader": leader, "ticks": results} if as_json else results,
                as_json,
                lambda rs: (
                    "\n".join(_tick_line(r) for r in rs)
                    or ("nothing due" if leader else "another scheduler leads; nothing run")
                ),
            )
            if any(r["status"] in ("failed", "retry") for r in results):
                raise click.exceptions.Exit(1)
            return
        try:
            while not stop.is_set():
                for r in runner.run_pass():
                    _emit_line(r, as_json, _tick_line)
                stop.wait(interval)
        finally:
            runner.close()


@cli.command("worker")
@click.option(
    "--concurrency", type=Whole(1), default=1, show_default=True, help="Delivering threads."
)
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
@click.option(
    "--poll", type=Whole(1), default=1, show_default=True, help="Seconds between polls when idle."
)
@JSON_OPTION
@pass_crm
def worker(crm: Any, concurrency: int, once: bool, poll: int, as_json: bool) -> None:
    """Deliver the outbox, with retries.

    Claim, send, record; a failed attempt backs off.

    With --json, --once prints one JSON document; the long-running worker one
    JSON line per batch and a last one when it stops. Several workers may run at once (on PostgreSQL they claim different
    messages; on SQLite claims take turns). SIGTERM finishes the batch in hand
    and exits."""
    from crmcore.ops.worker import run_workers

    def progress(done: Any) -> None:
        if not once:
            _emit_line(done.to_json(), as_json, _pass_line)

    with _stop_on_signals() as stop:
        total = run_workers(
            crm, concurrency=concurrency, once=once, stop=stop, idle_seconds=poll, on_pass=progress
        )
    if once:
        emit(total.to_json(), as_json, _pass_line)
    else:  # the last line: what this worker did in all
        _emit_line(
            {"stopped": True, **total.to_json()}, as_json, lambda d: "stopped: " + _pass_line(d)
        )


def _pass_line(d: dict[str, int]) -> str:
    return (
        f"sent {d['sent']}, failed attempts {d['failed']}, dead {d['dead']} "
        f"(claimed {d['claimed']})"
    )


@jobs.command("history")
@click.option("--job", "job", metavar="NAME", help="One job only.")
@click.option("--limit", type=Whole(1), default=50, show_default=True)
@JSON_OPTION
@pass_crm
def jobs_history(crm: Any, job: str | None, limit: int, as_json: bool) -> None:
    """Scheduled runs, newest first.

    Each with its tick (UTC), result, attempts, duration and error."""
    from crmcore.cli.output import summary_text, table
    from crmcore.ops.scheduler import history

    rows = history(crm, job=job, limit=limit)
    emit(
        rows,
        as_json,
        lambda rs: table(
            [
                (
                    r["tick"].isoformat(),
                    r["job"],
                    r["status"],
                    r["attempts"],
                    r["duration_ms"],
                    r["error"] or (summary_text(r["summary"]) if r["summary"] else None),
                )
                for r in rs
            ],
            ["tick (UTC)", "job", "status", "attempts", "ms", "result"],
            empty="no scheduled runs yet",
        ),
    )


@outbox.command("dead")
@JSON_OPTION
@pass_crm
def outbox_dead(crm: Any, as_json: bool) -> None:
    """Messages given up (dead), with their last error."""
    from crmcore.cli.output import table
    from crmcore.ops.worker import dead_messages

    data = [
        {
            "id": m.id,
            "channel": m.channel,
            "attempts": m.attempts,
            "last_error": m.last_error,
            "key": m.idempotency_key,
        }
        for m in dead_messages(crm)
    ]
    emit(
        data,
        as_json,
        lambda ms: table(
            [(m["id"], m["channel"], m["attempts"], m["last_error"]) for m in ms],
            ["id", "channel", "attempts", "last error"],
            empty="no dead messages",
        ),
    )


@outbox.command("retry")
@click.argument("message_id", required=False, type=Whole(1))
@click.option("--all-dead", is_flag=True, help="Queue every dead message again.")
@JSON_OPTION
@pass_crm
def outbox_retry(crm: Any, message_id: int | None, all_dead: bool, as_json: bool) -> None:
    """Queue dead messages again.

    Message ID, or --all-dead; with fresh attempts."""
    from crmcore.errors import ValidationError
    from crmcore.ops.worker import retry_messages

    if (message_id is None) == (not all_dead):
        raise ValidationError("outbox retry: give a message ID or --all-dead (one of them)")
    count = retry_messages(crm, None if message_id is None else [message_id])
    emit({"queued": count}, as_json, lambda d: f"queued again: {d['queued']}")
