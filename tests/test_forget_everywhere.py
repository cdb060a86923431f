"""Forgetting a customer erases their name and contact points from every table,
every text column and the outbox log, whatever the core or a plugin copied them into."""

from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa

from crmcore.plugins import installed

SHIPPED = ("retail", "utility", "insurance", "real_estate")


def _phone_forms(e164: str) -> set[str]:
    """Every way the phone +8613900001111 may have been copied: E.164, 0086, the
    national number, spaced or dashed in 3-4-4 groups."""
    national = e164.removeprefix("+86")
    groups = f"{national[:3]} {national[3:7]} {national[7:]}"
    return {
        e164,
        "0086" + national,
        national,
        groups,
        groups.replace(" ", "-"),
        "+86 " + groups,
    }


def _texts(value: object) -> list[str]:
    """Every string inside a column value (JSON documents included, decoded)."""
    if value is None:
        return []
    if isinstance(value, str):
        out = [value]
        stripped = value.strip()
        if stripped[:1] in '[{"':
            try:
                out += _texts(json.loads(stripped))
            except ValueError:
                pass
        return out
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in (*_texts(k), *_texts(v))]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _texts(v)]
    return [str(value)]


def _digits_only(text: str) -> str:
    return re.sub(r"[\s\-()]", "", text)


def _find(needles: set[str], texts: list[str]) -> list[str]:
    found = []
    for text in texts:
        for needle in needles:
            if needle in text or _digits_only(needle) in _digits_only(text):
                found.append(f"{needle!r} in {text[:120]!r}")
    return found


def _whole_database(crm) -> dict[str, list[str]]:
    """Every text of every row of every table, as the database holds it."""
    out: dict[str, list[str]] = {}
    with crm.engine.connect() as conn:
        inspector = sa.inspect(conn)
        for table in inspector.get_table_names():
            rows = conn.execute(sa.text(f'SELECT * FROM "{table}"')).all()
            out[table] = [t for row in rows for value in row for t in _texts(value)]
    return out


@pytest.mark.skipif(
    not set(SHIPPED) <= set(installed()), reason="the shipped plugins are not installed"
)
def test_forget_leaves_no_name_or_phone_anywhere(crm_factory, tmp_path):
    from crmcore.demo import DEMO_AT, load_demo_data

    crm = crm_factory(plugins=SHIPPED)
    crm.clock.set(DEMO_AT)
    load_demo_data(crm, command="test setup")
    fang = crm.customers.get("C-1001")
    # a twin record merged into hers keeps the name it was entered with
    twin = crm.customers.add("Fang Wu", phone="139 0000 3333", email="fang.w@example.cn")
    crm.records.add_interaction(twin, "call", "Fang Wu asked for the invoice")
    crm.customers.merge(fang, twin)
    # more places a name is copied: a reminder and an interaction that name her,
    # a ticket note, an SMS from her phone, and the outbox log once sent
    crm.tickets.add_reminder("zhang", f"ring {fang.name} on {fang.phone}", DEMO_AT, customer=fang)
    crm.records.add_interaction(fang, "note", f"{fang.name} prefers 139-0000-1111 after six")
    ticket = crm.tickets.open(fang, f"{fang.name}: parcel missing", owner="zhang")
    crm.tickets.move(ticket, "review", note=f"spoke to {fang.name} at 139 0000 1111")
    crm.messages.receive_sms("139 0000 1111", f"this is {fang.name}, please call back")
    crm.messages.enqueue("sms", body=f"Dear {fang.name}, your order is ready", customer=fang)
    crm.messages.send_outbox()
    outbox_log = tmp_path / "outbox.log"
    assert fang.name in outbox_log.read_text(encoding="utf-8")  # the leak to be erased
    other = crm.customers.get("C-1002")

    needles = {
        fang.name,
        fang.email or "",
        *_phone_forms(fang.phone),
        "Fang Wu",
        "fang.w@example.cn",
        *_phone_forms("+8613900003333"),
    } - {""}
    before = _find(needles, [t for ts in _whole_database(crm).values() for t in ts])
    assert before  # the setup really copied her data around

    crm.customers.forget(fang)

    leaks = {
        table: hits
        for table, texts in _whole_database(crm).items()
        if (hits := _find(needles, texts))
    }
    assert leaks == {}, "\n".join(f"{t}: {h[:4]} ({len(h)})" for t, h in leaks.items())
    log_lines = outbox_log.read_text(encoding="utf-8").splitlines()
    assert log_lines and _find(needles, log_lines) == []
    assert crm.customers.get("C-1002").name == other.name  # the household member stays
    # redacting the twins' rows and the rows that copied her data keeps the chain valid
    assert crm.admin.verify_audit_trail()["ok"] is True


def test_forget_erases_a_two_character_name_copied_into_other_records(crm):
    fang = crm.customers.add("吴芳", phone="139 0000 1111")
    lei = crm.customers.add("吴磊")
    crm.staff.add("zhang", "Zhang Wei", roles=["rep"])
    crm.tickets.add_reminder("zhang", "给吴芳回电 13900001111", crm.now())  # on nobody's record
    crm.records.add_interaction(lei, "note", "母亲吴芳代为付款")
    crm.customers.forget(fang)
    texts = _whole_database(crm)
    assert _find({"吴芳", *_phone_forms("+8613900001111")}, sum(texts.values(), [])) == []
    assert "吴磊" in texts["customers"]  # another customer's own name stays
