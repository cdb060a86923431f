"""crm import transactions: validation, all-or-nothing, skip-invalid, idempotence, hooks."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crmcore import AccessDenied, PluginInfo, ValidationError, hookimpl
from crmcore.importer import ImportFailed, import_transactions
from crmcore.schema import audit_log, customer_stats, transactions
from crmcore.storage._driver import connection

HEADER = "customer_external_id,occurred_at,amount,external_id,channel\n"


def _customers(crm, n=2):
    return [crm.customers.add(f"C{i}", external_id=f"C{i}") for i in range(1, n + 1)]


def _write(tmp_path: Path, text: str | bytes, name: str = "tx.csv") -> str:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return str(p)


def _tx(crm):
    with crm.transaction(write=False):
        return [
            tuple(r)
            for r in connection(crm.db).execute(
                select(
                    transactions.c.external_id,
                    transactions.c.customer_id,
                    transactions.c.occurred_at,
                    transactions.c.amount_cents,
                    transactions.c.channel,
                ).order_by(transactions.c.id)
            )
        ]


def test_imports_exact_cents_times_and_stats(crm, tmp_path):
    c1, c2 = _customers(crm)
    path = _write(
        tmp_path,
        HEADER
        + "C1,2025-01-02 10:00:00,12.34,T1,shop\n"
        + "C1,2025-01-03,0.1,T2,\n"
        + "C2,2025-02-01T08:30:00,5.00,T3,web\n"
        + "C2,2025-02-02T08:30:00.250000,1.230,,\n",
    )
    s = import_transactions(crm, path)
    assert (s["imported"], s["rejected"], s["duplicates"], s["errors"]) == (4, 0, 0, [])
    assert _tx(crm) == [
        ("T1", c1.id, dt.datetime(2025, 1, 2, 10), 1234, "shop"),
        ("T2", c1.id, dt.datetime(2025, 1, 3), 10, None),
        ("T3", c2.id, dt.datetime(2025, 2, 1, 8, 30), 500, "web"),
        (None, c2.id, dt.datetime(2025, 2, 2, 8, 30, 0, 250000), 123, None),
    ]
    with crm.transaction(write=False):
        stats = {r.customer_id: r for r in connection(crm.db).execute(select(customer_stats))}
    assert (stats[c1.id].tx_count, stats[c1.id].spend_cents) == (2, 1244)
    assert stats[c1.id].first_at == dt.datetime(2025, 1, 2, 10)
    assert stats[c2.id].last_at == dt.datetime(2025, 2, 2, 8, 30, 0, 250000)
    # the service's own path sees the same stored format: it adds to the stats
    crm.records.add_transaction(c1.id, 100, occurred_at=dt.datetime(2025, 3, 1))
    assert crm.records.card(c1.id)["stats"]["tx_count"] == 3


def test_times_stored_as_sqlalchemy_writes_them(crm, tmp_path):
    (c1, _c2) = _customers(crm)
    crm.records.add_transaction(c1.id, 100, occurred_at=dt.datetime(2025, 1, 1, 9), external_id="S1")
    import_transactions(crm, _write(tmp_path, HEADER + "C1,2025-01-01 09:00:00,1.00,I1,\n"))
    with crm.transaction(write=False):
        same = connection(crm.db).execute(
            select(func.count())
            .select_from(transactions)
            .where(transactions.c.occurred_at == dt.datetime(2025, 1, 1, 9))
        ).scalar()
    assert same == 2


@pytest.mark.parametrize(
    "row,message",
    [
        ("C1,2025-13-01,1.00,X,", "is not an ISO date"),
        ("C1,yesterday,1.00,X,", "is not an ISO date"),
        ("C1,1800-01-01,1.00,X,", "out of range"),
        ("C1,2025-01-01,1.005,X,", "more than 2 decimal places"),
        ("C1,2025-01-01,1e3,X,", "not a decimal number"),
        ("C1,2025-01-01,NaN,X,", "not a decimal number"),
        ('C1,2025-01-01,"1,000.00",X,', "not a decimal number"),
        ("C1,2025-01-01,,X,", "not a decimal number"),
        ("C9,2025-01-01,1.00,X,", "unknown customer 'C9'"),
        (",2025-01-01,1.00,X,", "customer_external_id: required"),
        ("C1,2025-01-01,1.00", "expected 5 fields"),
    ],
)
def test_invalid_rows_are_line_numbered_and_nothing_is_written(crm, tmp_path, row, message):
    _customers(crm)
    path = _write(tmp_path, HEADER + "C1,2025-01-01,1.00,OK1,\n" + row + "\n")
    with pytest.raises(ImportFailed) as e:
        import_transactions(crm, path)
    s = e.value.summary
    assert s["imported"] == 0 and s["rejected"] == 1
    assert s["errors"][0]["line"] == 3 and message in s["errors"][0]["message"]
    assert _tx(crm) == []


def test_bad_encoding_is_a_line_error_not_a_traceback(crm, tmp_path):
    _customers(crm)
    path = _write(
        tmp_path,
        (HEADER + "C1,2025-01-01,1.00,A,\n").encode()
        + b"C1,2025-01-02,2.00,B,caf\xe9\n"
        + b"C2,2025-01-03,3.00,C,\n",
    )
    with pytest.raises(ImportFailed) as e:
        import_transactions(crm, path)
    assert e.value.summary["errors"] == [
        {"line": 3, "message": e.value.summary["errors"][0]["message"]}
    ]
    assert "not valid UTF-8" in e.value.summary["errors"][0]["message"]
    s = import_transactions(crm, path, skip_invalid=True)
    assert (s["imported"], s["rejected"]) == (2, 1)


def test_skip_invalid_loads_good_rows_and_writes_rejects(crm, tmp_path):
    _customers(crm)
    path = _write(
        tmp_path,
        HEADER + "C1,2025-01-01,1.00,A,\nC9,2025-01-01,1.00,B,\n"
        "C2,2025-01-02,bad,C,\nC2,2025-01-03,3.00,D,\n",
    )
    rejects = tmp_path / "rejects.csv"
    s = import_transactions(crm, path, skip_invalid=True, rejects=str(rejects))
    assert (s["imported"], s["rejected"]) == (2, 2)
    assert [e["line"] for e in s["errors"]] == [3, 4]
    assert [r[0] for r in _tx(crm)] == ["A", "D"]
    lines = rejects.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "line,error,customer_external_id,occurred_at,amount,external_id,channel"
    assert lines[1].startswith("3,unknown customer 'C9'") or lines[1].startswith("4,")
    assert len(lines) == 3


def test_duplicate_ids_within_file_and_against_database(crm, tmp_path):
    c1, _ = _customers(crm)
    crm.records.add_transaction(c1.id, 500, occurred_at=dt.datetime(2025, 1, 1), external_id="OLD")
    body = HEADER + (
        "C1,2025-01-02,1.00,A,\n"
        "C1,2025-01-02,1.00,A,\n"  # same again: duplicate, skipped
        "C1,2025-01-01 00:00:00,5,OLD,\n"
    )  # already stored, same values
    s = import_transactions(crm, _write(tmp_path, body))
    assert (s["imported"], s["duplicates"], s["rejected"]) == (1, 2, 0)
    conflict = HEADER + "C1,2025-01-02,1.00,B,\nC1,2025-01-02,2.00,B,\nC2,2025-01-01,5,OLD,\n"
    with pytest.raises(ImportFailed) as e:
        import_transactions(crm, _write(tmp_path, conflict, "c.csv"))
    errs = e.value.summary["errors"]
    assert [x["line"] for x in errs] == [3, 4]
    assert "repeats line 2" in errs[0]["message"] and "already recorded" in errs[1]["message"]


def test_reimport_is_idempotent(crm, tmp_path):
    _customers(crm)
    path = _write(
        tmp_path,
        HEADER + "".join(f"C{1 + i % 2},2025-01-{1 + i:02d},{i}.50,T{i},\n" for i in range(10)),
    )
    first = import_transactions(crm, path, batch_size=3)
    again = import_transactions(crm, path, batch_size=4)
    assert (first["imported"], first["duplicates"]) == (10, 0)
    assert (again["imported"], again["duplicates"]) == (0, 10)
    with crm.transaction(write=False):
        n, spend = connection(crm.db).execute(
            select(func.sum(customer_stats.c.tx_count), func.sum(customer_stats.c.spend_cents))
        ).one()
    assert (n, spend) == (10, sum(i * 100 + 50 for i in range(10)))


def test_one_audit_row_per_batch(crm, tmp_path):
    _customers(crm)
    path = _write(tmp_path, HEADER + "".join(f"C1,2025-01-{1 + i:02d},1,T{i},\n" for i in range(7)))
    s = import_transactions(crm, path, batch_size=3)
    assert s["batches"] == 3
    with crm.transaction(write=False):
        rows = connection(crm.db).execute(
            select(audit_log.c.after).where(
                audit_log.c.entity == "transactions", audit_log.c.action == "import"
            )
        ).all()
    assert sorted(r[0]["rows"] for r in rows) == [1, 3, 3]


def test_header_problems(crm, tmp_path):
    _customers(crm)
    with pytest.raises(ValidationError, match="missing column.*'amount'"):
        import_transactions(
            crm, _write(tmp_path, "customer_external_id,occurred_at\nC1,2025-01-01\n")
        )
    with pytest.raises(ValidationError, match="unknown column.*'colour'"):
        import_transactions(
            crm, _write(tmp_path, "customer_external_id,occurred_at,amount,colour\n")
        )
    with pytest.raises(ValidationError, match="empty file"):
        import_transactions(crm, _write(tmp_path, ""))


def test_jsonl(crm, tmp_path):
    c1, _ = _customers(crm)
    path = _write(
        tmp_path,
        "\n".join(
            [
                json.dumps(
                    {"customer_external_id": "C1", "occurred_at": "2025-01-01", "amount": "2.50"}
                ),
                '{"customer_external_id": "C1", "occurred_at": "2025-01-02", "amount": 0.1}',
                '{"customer_external_id": "C1", "occurred_at": "2025-01-02", "amount": 3, "colour": 1}',
                "not json",
            ]
        )
        + "\n",
        "tx.jsonl",
    )
    s = import_transactions(crm, path, skip_invalid=True)
    assert s["imported"] == 2 and [e["line"] for e in s["errors"]] == [3, 4]
    assert [r[3] for r in _tx(crm)] == [250, 10]


def test_needs_an_unrestricted_principal(crm, tmp_path):
    _customers(crm)
    crm.staff.add("rep1", "Rep", roles=("rep",))
    path = _write(tmp_path, HEADER + "C1,2025-01-01,1.00,A,\n")
    with pytest.raises(AccessDenied):
        import_transactions(crm.as_("rep1"), path)


class BatchPlugin:
    def __init__(self):
        self.batches = []
        self.single = []

    @hookimpl
    def crm_plugin_info(self):
        return PluginInfo(version="1")

    @hookimpl
    def crm_transaction_recorded_batch(self, crm, batch):
        self.batches.append((batch.first_id, batch.last_id, batch.count, batch.customer_ids))

    @hookimpl
    def crm_transaction_recorded(self, crm, transaction):
        self.single.append(transaction.id)


class SinglePlugin:
    def __init__(self):
        self.single = []

    @hookimpl
    def crm_transaction_recorded(self, crm, transaction):
        self.single.append((transaction.id, transaction.amount_cents))


def test_batch_hooks_and_the_singular_fallback(crm_factory, tmp_path):
    both, only = BatchPlugin(), SinglePlugin()
    crm = crm_factory(plugins=["both", "only"], extra_plugins={"both": both, "only": only})
    c1, c2 = _customers(crm)
    path = _write(
        tmp_path,
        HEADER + "".join(f"C{1 + i % 2},2025-01-{1 + i:02d},{i},T{i},\n" for i in range(5)),
    )
    import_transactions(crm, path, batch_size=2)
    assert [b[:3] for b in both.batches] == [(1, 2, 2), (3, 4, 2), (5, 5, 1)]
    assert set(both.batches[0][3]) == {c1.id, c2.id}
    assert both.single == []  # implements the batch hook: never called per row
    assert only.single == [(i + 1, i * 100) for i in range(5)]  # singular only: once per row


def test_cli_json_summary_and_exit_status(crm, crm_cli, tmp_path):
    _customers(crm)
    good = _write(tmp_path, HEADER + "C1,2025-01-01,1.00,A,\n")
    r = crm_cli("import", "transactions", good, "--json")
    assert r.exit_code == 0, r
    assert r.json()["imported"] == 1 and r.json()["errors"] == []
    bad = _write(tmp_path, HEADER + "C1,2025-01-01,x,B,\n", "bad.csv")
    r = crm_cli("import", "transactions", bad, "--json")
    assert r.exit_code == 1
    assert r.json()["errors"] == [
        {"line": 2, "message": "amount: 'x' is not a decimal number like 12.34"}
    ]
    r = crm_cli(
        "import", "transactions", bad, "--skip-invalid", "--rejects", str(tmp_path / "r.csv")
    )
    assert r.exit_code == 0 and "imported 0 transactions" in r.stdout and "1 rejected" in r.stdout
