"""Customer search: access-filtered, ranked, indexed, kept current by every write."""

from __future__ import annotations

import pytest

from crmcore import NotFound, ValidationError
from crmcore.search import find_by_contact, reindex, search_customers


@pytest.fixture
def shop(crm):
    crm.staff.add("li", "Li", roles=["supervisor"], team="north")
    crm.staff.add("zhang", "Zhang", roles=["rep"], team="north", supervisor="li")
    crm.staff.add("chen", "Chen", roles=["rep"], team="north", supervisor="li")
    crm.staff.add("wang", "Wang", roles=["rep"], team="south")
    crm.staff.add("audit", "Auditor", roles=["auditor"])
    z = crm.customers.add("吴芳", phone="138 0000 1111", owner="zhang", external_id="C-1001")
    c = crm.customers.add("Wu Lei", phone="139 0000 1111", owner="chen", email="lei@example.cn")
    w = crm.customers.add("王小明", phone="137 0000 1111", owner="wang")
    return crm, {"zhang": z, "chen": c, "wang": w}


def ids(hits):
    return [h["id"] for h in hits]


def test_a_reps_search_never_returns_another_reps_customer(shop):
    crm, who = shop
    assert ids(search_customers(crm.as_("zhang"), "1111")) == [who["zhang"].id]
    assert ids(search_customers(crm.as_("wang"), "1111")) == [who["wang"].id]
    # not by name, phone, e-mail or external id either
    for text in ("Wu Lei", "13900001111", "lei@example.cn", "王小明", "lei@"):
        assert search_customers(crm.as_("zhang"), text) == []
    assert set(ids(search_customers(crm.as_("li"), "1111"))) == {who["zhang"].id, who["chen"].id}
    assert len(search_customers(crm.as_("audit"), "1111")) == 3


def test_a_departed_rep_finds_nobody(shop):
    crm, _ = shop
    crm.staff.leave("zhang", handover_to="chen")
    assert search_customers(crm.as_("zhang"), "1111") == []


def test_the_last_four_digits_and_any_phone_form_find_the_customer(shop):
    crm, who = shop
    z = who["zhang"].id
    for text in ("1111", "0000 1111", "138 0000 1111", "+86 138-0000-1111", "0086 13800001111"):
        assert z in ids(search_customers(crm, text)), text
    assert ids(search_customers(crm, "+86 138-0000-1111")) == [z]


def test_ranking_is_exact_then_prefix_then_fragment(crm):
    frag = crm.customers.add("Joanna Lee")
    exact = crm.customers.add("Ann")
    prefix = crm.customers.add("Anne Shirley")
    hits = search_customers(crm, "ann")
    assert ids(hits) == [exact.id, prefix.id, frag.id]
    assert [h["match"] for h in hits] == ["exact", "prefix", "fragment"]


def test_each_core_key_kind_is_found(shop):
    crm, who = shop
    z, c = who["zhang"].id, who["chen"].id
    assert ids(search_customers(crm, "C-1001")) == [z]
    assert ids(search_customers(crm, "c-10")) == [z]  # prefix, any case
    assert ids(search_customers(crm, "LEI@EXAMPLE.CN")) == [c]
    assert ids(search_customers(crm, "example")) == [c]
    assert ids(search_customers(crm, "吴芳")) == [z]  # a two-character name: exact
    assert ids(search_customers(crm, "吴")) == [z]  # one character: a prefix
    assert ids(search_customers(crm, "小明")) == []  # two characters inside: not indexed
    assert ids(search_customers(crm, "王小明")) == [who["wang"].id]
    assert ids(search_customers(crm, "u le")) == [c]  # a fragment of three


def test_pinyin_initials_find_a_chinese_name(shop):
    pytest.importorskip("pypinyin")
    crm, who = shop
    reindex(crm)  # the test harness empties every table between tests, search_pinyin too
    assert ids(search_customers(crm, "wf")) == [who["zhang"].id]
    assert ids(search_customers(crm, "WXM")) == [who["wang"].id]


def test_the_index_follows_updates_contact_points_merges_and_forgetting(shop):
    crm, who = shop
    z = who["zhang"]
    crm.customers.update(z, name="Fang Wu", phone="136 5555 2222")
    assert search_customers(crm, "吴芳") == []
    assert search_customers(crm, "1380000") == []
    assert ids(search_customers(crm, "5555 2222")) == [z.id]
    crm.customers.add_contact_point(z, "phone", "135 7777 9999")
    assert ids(search_customers(crm, "7777")) == [z.id]
    twin = crm.customers.add("Fang Wu (old card)", phone="133 4444 6666", owner="zhang")
    crm.customers.merge(z, twin)
    # the twin's phone moved to the survivor; the twin itself never shows
    assert ids(search_customers(crm, "4444 6666")) == [z.id]
    assert ids(search_customers(crm, "old card")) == []
    crm.customers.forget(z)
    for text in ("Fang", "5555", "7777", "4444", "C-1001"):
        assert search_customers(crm, text) == [], text


def test_a_failed_write_leaves_the_index_as_it_was(shop):
    crm, who = shop
    with pytest.raises(RuntimeError), crm.transaction():
        crm.customers.update(who["zhang"], name="Nobody")
        raise RuntimeError("rolled back")
    assert ids(search_customers(crm, "吴芳")) == [who["zhang"].id]
    assert search_customers(crm, "Nobody") == []


def test_phones_are_masked_without_pii(shop):
    crm, who = shop
    (hit,) = search_customers(crm.as_("audit"), "C-1001")
    assert hit["phone"] == "+86138****1111"
    (own,) = search_customers(crm.as_("zhang"), "C-1001")
    assert own["phone"] == "+8613800001111"


def test_bad_input_is_one_clear_line(crm):
    with pytest.raises(ValidationError, match="give the text"):
        search_customers(crm, "   ")
    with pytest.raises(ValidationError, match="--limit"):
        search_customers(crm, "x", limit=0)
    with pytest.raises(ValidationError, match="at most"):
        search_customers(crm, "x" * 101)
    # FTS syntax in the text is only text
    assert search_customers(crm, 'a" OR "b') == []
    assert search_customers(crm, "50%_") == []


def test_a_phone_or_email_ref_resolves_to_exactly_one_visible_customer(shop):
    crm, who = shop
    assert find_by_contact(crm, "138 0000 1111") == who["zhang"].id
    assert find_by_contact(crm, "LEI@example.cn") == who["chen"].id
    assert find_by_contact(crm, "not a phone") is None
    with pytest.raises(NotFound):
        find_by_contact(crm.as_("zhang"), "139 0000 1111")  # chen's: like a missing one
    crm.customers.add_contact_point(who["wang"], "email", "shared@example.cn")
    assert find_by_contact(crm, "shared@example.cn") == who["wang"].id


def test_reindex_rebuilds_the_same_index(shop):
    crm, who = shop
    before = ids(search_customers(crm, "1111"))
    result = reindex(crm)
    assert result["terms"] > 0
    assert ids(search_customers(crm, "1111")) == before
    with pytest.raises(Exception, match="admin"):
        reindex(crm.as_("zhang"))


def test_imported_customers_are_indexed_in_the_import(crm, tmp_path):
    from crmcore.importer import import_customers

    path = tmp_path / "customers.csv"
    path.write_text("name,phone\n吴芳,13811112222\nWu Lei,13933334444\n", encoding="utf-8")
    import_customers(crm, str(path))
    assert [h["name"] for h in search_customers(crm, "3333 4444")] == ["Wu Lei"]
    assert [h["name"] for h in search_customers(crm, "1111 2222")] == ["吴芳"]


def test_a_contact_held_by_two_visible_customers_is_refused_naming_both(shop):
    from crmcore.schema import contact_points

    crm, who = shop
    with crm.transaction() as db:  # a duplicate written around the service's checks
        db.execute(
            contact_points.insert().values(
                customer_id=who["chen"].id, kind="phone", value="+8613800001111", consent=True
            )
        )
    with pytest.raises(
        ValidationError, match=rf"2 customers \({who['zhang'].id}, {who['chen'].id}\)"
    ):
        find_by_contact(crm, "138 0000 1111")
    # a rep who sees only one of them gets that one
    assert find_by_contact(crm.as_("zhang"), "138 0000 1111") == who["zhang"].id


def test_cli_search_and_show_by_phone(shop, crm_cli):
    crm, who = shop
    found = crm_cli("--as", "zhang", "customer", "search", "1111", "--json")
    assert found.exit_code == 0 and [h["id"] for h in found.json()] == [who["zhang"].id]
    shown = crm_cli("customer", "show", "13800001111", "--json")
    assert shown.exit_code == 0 and shown.json()["id"] == who["zhang"].id
    hidden = crm_cli("--as", "zhang", "customer", "show", "13900001111")
    missing = crm_cli("--as", "zhang", "customer", "show", "13999999999")
    assert hidden.exit_code == missing.exit_code == 1
    assert hidden.stderr.replace("13900001111", "N") == missing.stderr.replace("13999999999", "N")
    bad = crm_cli("customer", "search", "x", "--limit", "0")
    assert bad.exit_code != 0 and "Traceback" not in bad.stderr
