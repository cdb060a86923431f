"""Re-importing transactions without transaction ids: content fingerprints per
file and per batch refuse what was already imported, on both backends."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from crmcore.importer import import_transactions
from crmcore.importer._transactions import FINGERPRINT_ROWS, AlreadyImported
from crmcore.schema import import_fingerprints, transactions
from crmcore.storage._driver import connection

HEADER = "customer_external_id,occurred_at,amount,channel\n"


def _customers(crm, n=3):
    for i in range(n):
        crm.customers.add(f"c{i}", external_id=f"C{i}")


def _rows(n, start=0, amount="12.30"):
    """``n`` purchase lines, each at its own minute."""
    base = dt.datetime(2025, 3, 1, 9)
    return "".join(
        f"C{i % 3},{(base + dt.timedelta(minutes=start + i)):%Y-%m-%d %H:%M:%S},{amount},shop\n"
        for i in range(n)
    )


def _write(tmp_path, text, name="till.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _count(crm):
    with crm.transaction(write=False):
        return connection(crm.db).execute(select(func.count()).select_from(transactions)).scalar()


def test_the_same_file_again_is_refused_and_writes_nothing(crm, crm_cli, tmp_path):
    _customers(crm)
    path = _write(tmp_path, HEADER + _rows(40))
    first = crm_cli("import", "transactions", path, "--json")
    assert first.exit_code == 0 and first.json()["imported"] == 40
    again = crm_cli("import", "transactions", path, "--json")
    assert again.exit_code == 1 and again.stdout == ""
    message = again.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "lines 2-41" in message and "already imported" in message
    assert "till.csv" in message and "--allow-duplicates" in message
    assert _count(crm) == 40  # nothing written, stats untouched
    assert crm.records.card("C0")["stats"]["tx_count"] == 14


def test_allow_duplicates_imports_the_content_again(crm, crm_cli, tmp_path):
    _customers(crm)
    path = _write(tmp_path, HEADER + _rows(10))
    assert crm_cli("import", "transactions", path).exit_code == 0
    res = crm_cli("import", "transactions", path, "--allow-duplicates", "--json")
    assert res.exit_code == 0 and res.json()["imported"] == 10
    assert _count(crm) == 20


def test_the_fingerprint_is_of_the_values_not_their_spelling(crm, tmp_path):
    _customers(crm)
    import_transactions(crm, _write(tmp_path, HEADER + "C1,2025-03-01 09:00:00,12.30,shop\n"))
    respelt = _write(tmp_path, HEADER + " C1 ,2025-03-01T09:00:00,12.3, shop \n", "again.csv")
    with pytest.raises(AlreadyImported, match="lines 2-2 "):
        import_transactions(crm, respelt)


def test_a_grown_file_is_refused_with_the_batches_that_repeat(crm, tmp_path):
    _customers(crm)
    n = FINGERPRINT_ROWS + 200
    import_transactions(crm, _write(tmp_path, HEADER + _rows(n), "day1.csv"))
    grown = _write(tmp_path, HEADER + _rows(n) + _rows(300, start=n), "day2.csv")
    with pytest.raises(AlreadyImported) as e:
        import_transactions(crm, grown)
    # the first full batch repeats; the second mixes old and new rows, so it differs
    assert f"lines 2-{FINGERPRINT_ROWS + 1} " in str(e.value) and "day1.csv" in str(e.value)
    assert _count(crm) == n


def test_new_content_is_imported_and_fingerprinted(crm, tmp_path):
    _customers(crm)
    import_transactions(crm, _write(tmp_path, HEADER + _rows(5), "day1.csv"))
    s = import_transactions(crm, _write(tmp_path, HEADER + _rows(5, start=100), "day2.csv"))
    assert s["imported"] == 5 and _count(crm) == 10
    with crm.transaction(write=False):
        got = connection(crm.db).execute(
            select(
                import_fingerprints.c.scope,
                import_fingerprints.c.first_line,
                import_fingerprints.c.last_line,
                import_fingerprints.c.rows,
            ).order_by(import_fingerprints.c.id)
        ).all()
    assert [tuple(r) for r in got] == [("batch", 2, 6, 5), ("file", 2, 6, 5)] * 2


def test_a_batch_repeated_inside_one_file_is_refused(crm, tmp_path):
    _customers(crm)
    block = _rows(FINGERPRINT_ROWS)
    path = _write(tmp_path, HEADER + block + block)
    with pytest.raises(AlreadyImported, match=rf"lines {FINGERPRINT_ROWS + 2}-"):
        import_transactions(crm, path, batch_size=300)
    assert _count(crm) == 0


def test_rows_with_transaction_ids_are_recognised_by_their_id(crm, tmp_path):
    _customers(crm)
    text = "customer_external_id,occurred_at,amount,external_id\n" + "".join(
        f"C1,2025-03-0{d} 10:00:00,5.00,T{d}\n" for d in range(1, 4)
    )
    path = _write(tmp_path, text)
    import_transactions(crm, path)
    s = import_transactions(crm, path)  # safe: counted as duplicates, no refusal
    assert (s["imported"], s["duplicates"]) == (0, 3)
    with crm.transaction(write=False):
        stored = connection(crm.db).execute(select(func.count()).select_from(import_fingerprints)).scalar()
    assert stored == 0


def test_a_failed_import_leaves_no_fingerprint(crm, tmp_path):
    from crmcore.importer import ImportFailed

    _customers(crm)
    bad = _write(tmp_path, HEADER + _rows(3) + "C1,not a date,1.00,shop\n")
    with pytest.raises(ImportFailed):
        import_transactions(crm, bad)
    fixed = _write(tmp_path, HEADER + _rows(3) + "C1,2025-04-01,1.00,shop\n", "fixed.csv")
    assert import_transactions(crm, fixed)["imported"] == 4


def test_help_says_what_is_safe_to_re_import(crm_cli):
    text = " ".join(crm_cli("import", "transactions", "--help").stdout.split())
    assert "Re-importing is safe for rows with an external_id" in text
    assert "already imported is refused" in text and "--allow-duplicates" in text
