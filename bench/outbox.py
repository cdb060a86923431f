"""The outbox worker's delivery rate against a raw loop, on one database.

    python bench/outbox.py                       # SQLite, 2,000 messages
    python bench/outbox.py --messages 5000 --pg-url postgresql://postgres@127.0.0.1:5432/DB

Both deliver the same queued messages through a channel that does nothing, so
what is measured is the bookkeeping around the channel call:

- raw: one SELECT of every queued message, then per message one UPDATE to
  ``sent`` in its own transaction (the least a sender can do and still record
  each result);
- worker: ``crmcore.ops.worker.Worker.drain`` (claim transactions of
  ``batch_size`` messages with leases, one result transaction per message).

Prints messages per second of each and their ratio. On PostgreSQL it uses the
schema ``crmbench_outbox`` (dropped and recreated).
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select, text, update

from crmcore import Channel, hookimpl
from crmcore import config as config_mod
from crmcore.access import SYSTEM
from crmcore.clock import FixedClock
from crmcore.ops.worker import Worker
from crmcore.schema import messages
from crmcore.service import CRM
from crmcore.storage._driver import connection

AT = dt.datetime(2026, 1, 5, 9, 0)


class Quiet:
    """A channel that accepts every message and does nothing."""

    @hookimpl
    def crm_delivery_channels(self) -> list[Channel]:
        return [Channel(name="sms", send=lambda message, key: None)]


def _crm(url: str) -> Any:
    cfg = config_mod.from_dict(
        {"crm": {"database": url, "plugins": ["quiet"], "sqlite_synchronous": "normal"}}
    )
    crm = CRM(cfg, clock=FixedClock(AT), extra_plugins={"quiet": Quiet()}, principal=SYSTEM)
    crm.admin.upgrade()
    return crm


def _fill(crm: Any, n: int) -> None:
    with crm.transaction():
        connection(crm.db).execute(messages.delete())
        connection(crm.db).execute(
            messages.insert(),
            [
                {
                    "channel": "sms",
                    "to_address": f"+86138{i:08d}",
                    "body": f"m{i}",
                    "idempotency_key": f"bench:{i}",
                    "status": "queued",
                    "attempts": 0,
                    "created_at": AT,
                    "source": "bench",
                }
                for i in range(n)
            ],
        )


def _raw(crm: Any) -> int:
    with crm.engine.connect() as conn:
        rows = conn.execute(
            select(messages.c.id, messages.c.idempotency_key).where(messages.c.status == "queued")
        ).all()
        conn.rollback()
        for row in rows:
            with conn.begin():
                conn.execute(
                    update(messages)
                    .where(messages.c.id == row.id)
                    .values(status="sent", sent_at=AT, attempts=1)
                )
    return len(rows)


def _timed(fn: Any) -> tuple[int, float]:
    start = time.perf_counter()
    n = fn()
    return n, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--pg-url", help="PostgreSQL instead of a SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.pg_url:
            sep = "&" if "?" in args.pg_url else "?"
            base = CRM(config_mod.from_dict({"crm": {"database": args.pg_url}}), principal=SYSTEM)
            with base.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA IF EXISTS crmbench_outbox CASCADE"))
                conn.execute(text("CREATE SCHEMA crmbench_outbox"))
            base.engine.dispose()
            url = f"{args.pg_url}{sep}options=-csearch_path%3Dcrmbench_outbox"
        else:
            url = f"sqlite:///{Path(tmp) / 'outbox.db'}"
        crm = _crm(url)
        _fill(crm, args.messages)
        raw_n, raw_s = _timed(lambda: _raw(crm))
        _fill(crm, args.messages)
        worker_n, worker_s = _timed(lambda: Worker(crm).drain().sent)
        crm.engine.dispose()
    backend = "PostgreSQL" if args.pg_url else "SQLite"
    print(f"{backend}, {args.messages} messages, channel does nothing")
    print(f"raw loop: {raw_n / raw_s:,.0f} messages/s ({raw_s:.2f} s)")
    print(f"worker:   {worker_n / worker_s:,.0f} messages/s ({worker_s:.2f} s)")
    print(f"ratio worker/raw time: {worker_s / raw_s:.2f}")


if __name__ == "__main__":
    main()
