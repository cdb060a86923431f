"""The audit writer reads the before images of an UPDATE or DELETE over N rows
in one SELECT, and the after images in one more, whatever N is: the statements
an audited change runs are counted with a SQLAlchemy event listener."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from crmcore.schema import audit_log, interactions
from crmcore.storage._driver import connection


@contextlib.contextmanager
def _statements(db) -> Iterator[list[str]]:
    """The SQL of every statement SQLAlchemy runs on the transaction's connection."""
    seen: list[str] = []
    conn = connection(db)

    def record(_conn, _cursor, statement, _params, _context, _many) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(conn, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(conn, "before_cursor_execute", record)


def _reads_of(seen: list[str], table: str) -> list[str]:
    return [s for s in seen if s.startswith("SELECT") and f"FROM {table}" in s]


@pytest.fixture
def notes(crm):
    """A rep's customer with many notes, and a helper to add more of them."""
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    mine = crm.customers.add("Mine", owner="zhang")

    def add(n: int) -> None:
        with crm.transaction() as db:
            db.insert_rows(
                interactions,
                [
                    {"customer_id": mine.id, "kind": "note", "text": f"n{i}", "at": crm.now()}
                    for i in range(n)
                ],
                what="notes",
            )

    return crm, add


def _audited_update(crm, who: str | None) -> tuple[int, list[str]]:
    actor = crm.as_(who) if who else crm
    with actor.transaction() as db:
        with _statements(db) as seen:
            changed = db.execute(
                sa.update(interactions).where(interactions.c.kind == "note").values(text="x")
            ).rowcount
    return changed, seen


@pytest.mark.parametrize("who", [None, "zhang"])
def test_an_update_of_many_rows_reads_its_images_in_one_select_each(notes, who):
    crm, add = notes
    add(3)
    few, seen_few = _audited_update(crm, who)
    add(60)
    many, seen_many = _audited_update(crm, who)
    assert (few, many) == (3, 63)
    # the same statements for 3 rows as for 63: nothing runs once per row
    assert len(seen_many) == len(seen_few)
    before_and_after = _reads_of(seen_many, "interactions")
    assert len(before_and_after) == (2 if who is None else 3)  # a rep's: + the visibility check
    with crm.transaction(write=False) as db:
        audited = db.scalar(
            sa.select(sa.func.count())
            .select_from(audit_log)
            .where(audit_log.c.entity == "interactions", audit_log.c.action == "update")
        )
    assert audited == few + many


def test_a_delete_of_many_rows_reads_its_before_images_in_one_select(notes):
    crm, add = notes
    add(40)
    with crm.transaction() as db:
        with _statements(db) as seen:
            gone = db.execute(sa.delete(interactions).where(interactions.c.kind == "note"))
    assert gone.rowcount == 40
    assert len(_reads_of(seen, "interactions")) == 1
