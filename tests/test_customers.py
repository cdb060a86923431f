"""Customers: normalised contacts, matching instead of twins, attributes, merge, forget."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from conftest import Loyalty

from crmcore import Conflict, NotFound, ValidationError, hookimpl
from crmcore.contacts import mask_phone, normalise_email, normalise_phone
from crmcore.schema import customers


@pytest.mark.parametrize(
    "typed",
    ["138 1234 5678", "+86 138-1234-5678", "0086 13812345678", "8613812345678", "(138) 1234.5678"],
)
def test_phone_forms_normalise_to_one(typed):
    assert normalise_phone(typed) == "+8613812345678"


@pytest.mark.parametrize(
    "bad", ["", "abc", "12", "+86 138 1234 5678 9999 1", "１３８１２３４５６７８"]
)
def test_bad_phones_are_refused(bad):
    with pytest.raises(ValidationError, match="phone"):
        normalise_phone(bad)


def test_email_normalised_and_validated():
    assert normalise_email("  Wu.Fang@Example.CN ") == "wu.fang@example.cn"
    with pytest.raises(ValidationError, match="not an e-mail"):
        normalise_email("wu@")


def test_mask_phone():
    assert mask_phone("+8613812345678") == "+86138****5678"


def test_add_matches_existing_by_phone_email_or_external_id(crm):
    c = crm.customers.add("Wu Fang", phone="138 1234 5678", email="wu@example.cn", external_id="C1")
    assert crm.customers.add("W. Fang", phone="+86-138-1234-5678").id == c.id
    assert crm.customers.add("Fang", email="WU@example.cn").id == c.id
    assert crm.customers.add("F", external_id="C1").id == c.id
    assert crm.customers.count() == 1
    with pytest.raises(Conflict, match="already has this phone"):
        crm.customers.add("Twin", phone="13812345678", on_match="error")


def test_cli_add_reports_the_match(crm, crm_cli):
    first = crm_cli("customer", "add", "--name", "Wu Fang", "--phone", "13812345678", "--json")
    assert first.exit_code == 0 and first.json()["created"] is True
    again = crm_cli("customer", "add", "--name", "Wu F", "--phone", "+86 138 1234 5678", "--json")
    assert again.json() | {} == again.json()
    assert again.json()["created"] is False and again.json()["matched_by"] == "phone"
    assert again.json()["id"] == first.json()["id"]


def test_get_by_id_or_external_id_and_not_found(crm):
    c = crm.customers.add("A", external_id="EXT-9")
    assert crm.customers.get("EXT-9").id == c.id
    assert crm.customers.get(str(c.id)).id == c.id
    with pytest.raises(NotFound, match="customer 'nope' not found"):
        crm.customers.get("nope")


def test_name_validation(crm):
    with pytest.raises(ValidationError, match="name: required"):
        crm.customers.add("  ")
    with pytest.raises(ValidationError, match="at most 300"):
        crm.customers.add("x" * 301)
    with pytest.raises(ValidationError, match="control characters"):
        crm.customers.add("a\x00b")


@pytest.mark.crm(plugins=["loyalty"], extra_plugins={"loyalty": Loyalty()})
def test_declared_attributes_are_validated(crm):
    c = crm.customers.add("A", attributes={"loyalty.level": 2})
    assert c.attributes == {"loyalty.level": 2}
    with pytest.raises(
        ValidationError, match="attribute 'colour' is not declared; declared: loyalty.id_number"
    ):
        crm.customers.add("B", attributes={"colour": "red"})
    with pytest.raises(ValidationError, match="expected integer"):
        crm.customers.add("C", attributes={"loyalty.level": "two"})
    with pytest.raises(ValidationError, match="above the maximum"):
        crm.customers.update(c, attributes={"loyalty.level": 9})
    assert crm.customers.update(c, attributes={"loyalty.level": None}).attributes == {}


def test_update_refuses_a_phone_of_another_customer(crm):
    a = crm.customers.add("A", phone="13800000001")
    crm.customers.add("B", phone="13800000002")
    with pytest.raises(Conflict, match="merge them instead"):
        crm.customers.update(a, phone="13800000002")


class Points:
    metadata = sa.MetaData()
    table = sa.Table(
        "points_ledger",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey(customers.c.id)),
        sa.Column("delta", sa.Integer),
    )

    def __init__(self):
        self.merged = []

    @hookimpl
    def crm_tables(self):
        return [self.table]

    @hookimpl
    def crm_before_customers_merge(self, crm, keep, other):
        self.merged.append((keep.id, other.id))


def test_merge_moves_every_record_including_plugin_tables(crm_factory):
    points = Points()
    crm = crm_factory(plugins=["points"], extra_plugins={"points": points})
    keep = crm.customers.add("Wu Fang", phone="13800000001", external_id="K")
    other = crm.customers.add("Fang Wu", email="fang@example.cn", external_id="O")
    crm.records.add_transaction(keep, 100)
    crm.records.add_transaction(other, 250)
    crm.records.add_interaction(other, "call", "duplicate record")
    crm.tickets.open(other, "late delivery")
    with crm.transaction():
        crm.db.execute(Points.table.insert().values(customer_id=other.id, delta=7))
    merged = crm.customers.merge(keep, other)
    assert points.merged == [(keep.id, other.id)]
    assert merged.email == "fang@example.cn"
    assert sorted(t.amount_cents for t in crm.records.transactions(keep)) == [100, 250]
    assert crm.customers.get("O").id == keep.id  # the old reference resolves to the survivor
    assert len(crm.tickets.list(customer=keep)) == 1
    with crm.transaction():
        assert crm.db.scalar(sa.select(Points.table.c.customer_id)) == keep.id
    assert crm.records.card(keep)["stats"]["spend_cents"] == 350
    assert crm.customers.count() == 1
    assert any(e.kind == "merge" for e in crm.records.timeline(keep))


def test_merge_refused_by_a_plugin_rolls_back(crm_factory):
    class Refuse:
        @hookimpl
        def crm_before_customers_merge(self, crm, keep, other):
            raise ValidationError("open policies on both records")

    crm = crm_factory(plugins=["refuse"], extra_plugins={"refuse": Refuse()})
    a, b = crm.customers.add("A"), crm.customers.add("B")
    crm.records.add_transaction(b, 5)
    with pytest.raises(ValidationError, match="open policies"):
        crm.customers.merge(a, b)
    assert crm.customers.count() == 2 and len(crm.records.transactions(b)) == 1


def test_merge_into_itself_is_refused(crm):
    a = crm.customers.add("A")
    with pytest.raises(ValidationError, match="into itself"):
        crm.customers.merge(a, a)


def test_relationships_typed_and_directed(crm):
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    parent = crm.customers.add("Parent")
    child = crm.customers.add("Child")
    rel = crm.customers.add_relationship("household", child, to_customer=parent)
    crm.customers.add_relationship("account_manager", parent, to_staff="zhang")
    assert rel.from_customer_id == child.id and rel.to_customer_id == parent.id
    assert {r.kind for r in crm.customers.relationships(parent)} == {"household", "account_manager"}
    with pytest.raises(Conflict, match="already exists"):
        crm.customers.add_relationship("household", child, to_customer=parent)
    with pytest.raises(ValidationError, match="exactly one"):
        crm.customers.add_relationship("household", child)
    crm.customers.end_relationship(rel.id)
    assert [r.kind for r in crm.customers.relationships(child)] == []


def test_extra_contact_points_are_normalised_and_matched(crm):
    a = crm.customers.add("Ann", phone="13800000001")
    crm.customers.add_contact_point(a, "phone", "139-0000-0002")
    assert crm.customers.match(phone="+86 139 0000 0002")[0].id == a.id
    assert crm.customers.contact_points(a) == [
        {"kind": "phone", "value": "+8613900000002", "consent": True}
    ]
    b = crm.customers.add("Bo", phone="13800000003")
    with pytest.raises(Conflict, match="belongs to customer"):
        crm.customers.add_contact_point(b, "phone", "13900000002")
    assert crm.customers.normalise_phone("0086 139 0000 0002") == "+8613900000002"


def test_owner_must_be_active(crm):
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    crm.staff.add("chen", "Chen", roles=["rep"])
    a = crm.customers.add("Ann", owner="chen")
    crm.staff.leave("zhang", handover_to="chen")
    with pytest.raises(ValidationError, match="'zhang' has left"):
        crm.customers.update(a, owner="zhang")
    with pytest.raises(ValidationError, match="has left"):
        crm.customers.add("Bo", owner="zhang")


def test_till_lookup_has_stored_labels_and_the_card_live_classification_too(crm_factory):
    class Live:
        @hookimpl
        def crm_classify_customer(self, crm, customer):
            return {"live.grade": "gold"}

    crm = crm_factory(plugins=["live"], extra_plugins={"live": Live()})
    c = crm.customers.add("Ann", phone="13800000001")
    for day, cents in enumerate((100, 200, 300), start=1):
        crm.records.add_transaction(c, cents, occurred_at=dt.datetime(2026, 1, day))
    crm.customers.set_label(c, "retail.tier", "silver")
    fast = crm.records.till_lookup("138 0000 0001", transactions_limit=2)
    assert fast["labels"] == {"retail.tier": "silver"}
    assert [t["amount_cents"] for t in fast["transactions"]] == [300, 200]
    assert fast["stats"]["tx_count"] == 3 and fast["stats"]["spend_cents"] == 600
    assert crm.records.card(c)["labels"] == {"retail.tier": "silver", "live.grade": "gold"}
    with pytest.raises(NotFound, match="no customer with phone"):
        crm.records.card(phone="13900000000")
