"""Saved segments: validated JSON conditions, one access-filtered statement."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import AccessDenied, Attribute, Conflict, NotFound, ValidationError, hookimpl
from crmcore.segments import (
    add_segment,
    count_members,
    export_members,
    list_segments,
    remove_segment,
    segment_members,
    show_segment,
    where_clause,
)


class Declares:
    @hookimpl
    def crm_customer_attributes(self):
        return [Attribute(name="shop.city"), Attribute(name="shop.age", schema={"type": "integer"})]


@pytest.fixture
def base(crm_factory):
    crm = crm_factory(plugins=["shop"], extra_plugins={"shop": Declares()})
    crm.staff.add("li", "Li", roles=["supervisor"], team="north")
    crm.staff.add("zhang", "Zhang", roles=["rep"], team="north", supervisor="li")
    crm.staff.add("wang", "Wang", roles=["rep"], team="south")
    crm.staff.add("audit", "Auditor", roles=["auditor"])
    return crm


def names(crm, seg, **kw):
    return sorted(m["name"] for m in segment_members(crm, seg, **kw))


def test_a_reps_count_and_members_never_include_another_reps_customers(base):
    crm = base
    crm.customers.add("Z1", owner="zhang")
    crm.customers.add("Z2", owner="zhang")
    crm.customers.add("W1", owner="wang")
    add_segment(crm, "everyone", {"stage": ["prospect"]})
    assert count_members(crm.as_("zhang"), "everyone") == 2
    assert names(crm.as_("zhang"), "everyone") == ["Z1", "Z2"]
    assert names(crm.as_("wang"), "everyone") == ["W1"]
    assert count_members(crm.as_("li"), "everyone") == 2
    assert count_members(crm.as_("audit"), "everyone") == 3


def test_each_core_condition_on_a_hand_built_case(base):
    crm = base
    now = crm.now()
    a = crm.customers.add("A", owner="zhang", attributes={"shop.city": "Shanghai", "shop.age": 30})
    b = crm.customers.add("B", owner="wang", consent_sms=False, attributes={"shop.age": 61})
    c = crm.customers.add("C", owner="zhang")
    crm.customers.change_stage(a, "new")
    crm.customers.set_label(a, "abc", "A")
    crm.customers.set_label(b, "abc", "C")
    crm.records.add_transaction(a, 50_000, occurred_at=now - dt.timedelta(days=3))
    crm.records.add_transaction(a, 10_000, occurred_at=now - dt.timedelta(days=2))
    crm.records.add_transaction(b, 2_000, occurred_at=now - dt.timedelta(days=90))
    crm.customers.add_relationship("referral", c, to_customer=a)
    cases = {
        "stage": ({"stage": ["new"]}, ["A"]),
        "owner": ({"owner": ["zhang"]}, ["A", "C"]),
        "team": ({"team": ["south"]}, ["B"]),
        "label": ({"label": {"name": "abc", "in": ["A", "B"]}}, ["A"]),
        "attr_eq": ({"attribute": {"name": "shop.city", "equals": "Shanghai"}}, ["A"]),
        "attr_min": ({"attribute": {"name": "shop.age", "min": 60}}, ["B"]),
        "attr_in": ({"attribute": {"name": "shop.age", "in": [30, 31]}}, ["A"]),
        "spend": ({"spend": {"min": 60_000}}, ["A"]),
        "frequency": ({"frequency": {"max": 1}}, ["B"]),
        "recent": ({"recency_days": {"max": 30}}, ["A"]),
        "lapsed": ({"recency_days": {"min": 60}}, ["B"]),
        "consent": ({"consent": "sms"}, ["A", "C"]),
        "referrer": ({"relationship": {"kind": "referral", "role": "from"}}, ["C"]),
        "referred": ({"relationship": {"kind": "referral", "role": "to"}}, ["A"]),
        "not": ({"not": {"owner": ["zhang"]}}, ["B"]),
        "any": ({"any": [{"stage": ["new"]}, {"team": ["south"]}]}, ["A", "B"]),
        "all": (
            {"all": [{"owner": ["zhang"]}, {"consent": "sms"}, {"stage": ["prospect"]}]},
            ["C"],
        ),
    }
    for name, (cond, want) in cases.items():
        add_segment(crm, f"s-{name}".replace("_", "-"), cond)
        assert names(crm, f"s-{name}".replace("_", "-")) == want, name


def test_merged_and_forgotten_customers_are_never_members(base):
    crm = base
    a = crm.customers.add("A", owner="zhang")
    b = crm.customers.add("B", owner="zhang")
    gone = crm.customers.add("Gone", owner="zhang")
    crm.customers.merge(a, b)
    crm.customers.forget(gone)
    add_segment(crm, "all", {"owner": ["zhang"]})
    assert names(crm, "all") == ["A"]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, r"\$: expected an object with exactly one key"),
        ({"stage": ["nope"]}, r"\$.stage: stage\(s\) \['nope'\] not configured"),
        ({"spend": {"least": 1}}, r"\$.spend: Additional properties"),
        (
            {"all": [{"stage": ["new"]}, {"colour": "red"}]},
            r"\$.all\[1\]: unknown condition 'colour'",
        ),
        (
            {"attribute": {"name": "shop.shoe", "equals": 1}},
            r"attribute 'shop.shoe' is not declared",
        ),
        ({"owner": ["nobody"]}, r"nobody"),
        ({"consent": "fax"}, r"\$.consent: 'fax' is not one of"),
    ],
)
def test_bad_conditions_are_refused_naming_the_place(base, doc, message):
    with pytest.raises((ValidationError, NotFound), match=message):
        add_segment(base, "bad", doc)
    assert list_segments(base) == []


def test_saved_segments_are_listed_shown_and_removed(base):
    crm = base
    add_segment(crm, "vip", {"label": {"name": "abc", "in": ["A"]}}, description="class A")
    with pytest.raises(Conflict, match="already exists"):
        add_segment(crm, "vip", {"stage": ["new"]})
    assert [s["name"] for s in list_segments(crm)] == ["vip"]
    assert show_segment(crm, "vip")["description"] == "class A"
    with pytest.raises(AccessDenied):
        add_segment(crm.as_("audit"), "mine", {"stage": ["new"]})
    remove_segment(crm, "vip")
    with pytest.raises(NotFound, match="segment 'vip' not found"):
        show_segment(crm, "vip")


def test_export_needs_export_and_masks_without_pii(base, tmp_path):
    crm = base
    crm.customers.add("Z1", phone="13800001111", owner="zhang")
    add_segment(crm, "all", {"stage": ["prospect"]})
    with pytest.raises(AccessDenied, match="export"):
        export_members(crm.as_("zhang"), "all", str(tmp_path / "z.csv"))
    assert not (tmp_path / "z.csv").exists()
    done = export_members(crm.as_("li"), "all", str(tmp_path / "li.csv"))
    assert done["rows"] == 1
    assert "+8613800001111" in (tmp_path / "li.csv").read_text(encoding="utf-8")
    crm_cfg = crm  # the file is private
    assert (tmp_path / "li.csv").stat().st_mode & 0o077 == 0
    assert crm_cfg is crm


def test_cli_segment_commands(base, crm_cli, tmp_path):
    crm = base
    crm.customers.add("Z1", owner="zhang")
    where = json.dumps({"owner": ["zhang"]})
    added = crm_cli("segment", "add", "mine", "--where", where, "--json", crm=crm)
    assert added.exit_code == 0, added
    assert crm_cli("segment", "count", "mine", "--json", crm=crm).json()["count"] == 1
    members = crm_cli("--as", "wang", "segment", "members", "mine", "--json", crm=crm)
    assert members.exit_code == 0 and members.json() == []
    bad = crm_cli("segment", "add", "x", "--where", "{nope", crm=crm)
    assert bad.exit_code == 1 and bad.stderr.startswith("error: --where: not JSON")
    spec = tmp_path / "seg.json"
    spec.write_text(json.dumps({"stage": ["prospect"]}), encoding="utf-8")
    assert crm_cli("segment", "add", "f", "--file", str(spec), crm=crm).exit_code == 0
    out = tmp_path / "out.csv"
    assert crm_cli("segment", "export", "f", str(out), "--json", crm=crm).json()["rows"] == 1
    assert crm_cli("segment", "remove", "f", crm=crm).exit_code == 0


# -- a segment's members equal a brute-force Python filter on random data ---------------

STAGES = ["prospect", "new", "stable"]
conditions = st.recursive(
    st.one_of(
        st.builds(
            lambda s: {"stage": s}, st.lists(st.sampled_from(STAGES), min_size=1, max_size=2)
        ),
        st.builds(lambda o: {"owner": [o]}, st.sampled_from(["zhang", "wang"])),
        st.builds(lambda v: {"label": {"name": "abc", "in": [v]}}, st.sampled_from("ABC")),
        st.builds(lambda n: {"spend": {"min": n}}, st.integers(0, 30_000)),
        st.builds(lambda n: {"frequency": {"max": n}}, st.integers(0, 3)),
        st.builds(lambda n: {"recency_days": {"max": n}}, st.integers(0, 40)),
        st.just({"consent": "sms"}),
    ),
    lambda inner: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, inner),
    ),
    max_leaves=5,
)


def brute(doc, c, now):
    ((key, v),) = doc.items()
    if key == "all":
        return all(brute(d, c, now) for d in v)
    if key == "any":
        return any(brute(d, c, now) for d in v)
    if key == "not":
        return not brute(v, c, now)
    if key == "stage":
        return c["stage"] in v
    if key == "owner":
        return c["owner"] in v
    if key == "label":
        return c["abc"] in v["in"]
    if key == "consent":
        return c["sms"]
    if not c["tx"]:
        return False
    if key == "spend":
        return sum(c["tx"]) >= v["min"]
    if key == "frequency":
        return len(c["tx"]) <= v["max"]
    return c["last"] >= now - dt.timedelta(days=v["max"])


@pytest.fixture
def random_base(base):
    import random

    crm, rnd, now = base, random.Random(7), base.now()
    people = []
    for i in range(40):
        c = {
            "owner": rnd.choice(["zhang", "wang"]),
            "stage": rnd.choice(STAGES),
            "abc": rnd.choice("ABC-"),
            "sms": rnd.random() < 0.7,
            "tx": [rnd.randint(100, 15_000) for _ in range(rnd.randint(0, 3))],
        }
        made = crm.customers.add(f"P{i}", owner=c["owner"], consent_sms=c["sms"], stage=c["stage"])
        if c["abc"] != "-":
            crm.customers.set_label(made, "abc", c["abc"])
        days = [rnd.randint(0, 50) for _ in c["tx"]]
        for amount, d in zip(c["tx"], days, strict=True):
            crm.records.add_transaction(made, amount, occurred_at=now - dt.timedelta(days=d))
        c["last"] = now - dt.timedelta(days=min(days)) if days else None
        c["name"] = made.name
        people.append(c)
    return crm, people


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=conditions)
def test_members_equal_a_brute_force_filter(random_base, doc):
    from sqlalchemy import select

    from crmcore.schema import live_customers

    crm, people = random_base
    now = crm.now()
    with crm.transaction(write=False) as db:
        got = sorted(
            r.name for r in db.execute(select(live_customers.c.name).where(where_clause(crm, doc)))
        )
    assert got == sorted(c["name"] for c in people if brute(doc, c, now))
