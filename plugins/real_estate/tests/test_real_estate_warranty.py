"""Warranty periods per category from config, counted from handover, with the reason."""

from __future__ import annotations

import datetime as dt

import pytest
from crm_real_estate import places
from crm_real_estate import requests as req
from crm_real_estate.settings import DEFAULT_SEASONS
from crm_real_estate.warranty import classify, season_end
from real_estate_helpers import HANDOVER, estate, leak

from crmcore import ConfigError, ValidationError

pytestmark = pytest.mark.crm(plugins=["real_estate"])

SEASONS = {
    "heating": ((11, 15), (3, 15)),
    "cooling": ((6, 1), (9, 30)),
}


def _cls(category_spec, reported, handover=HANDOVER, design_life=50):
    return classify(
        category="x",
        spec=category_spec,
        handover_at=handover,
        reported_at=reported,
        design_life_years=design_life,
        seasons=SEASONS,
        place="JD/A1/1201",
    )


def test_years_count_from_handover_and_end_exclusive():
    spec = {"warranty": "years", "period": 2}
    inside = _cls(spec, dt.datetime(2026, 6, 30, 23, 59))
    assert inside.status == "in" and inside.until == dt.datetime(2026, 7, 1)
    assert (
        "covered for 2 years from the handover of JD/A1/1201 on 2024-07-01, to 2026-06-30"
        in inside.reason
    )
    outside = _cls(spec, dt.datetime(2026, 7, 1))
    assert outside.status == "out"
    assert outside.reason.startswith("out of warranty:") and "ended on 2026-06-30" in outside.reason


def test_design_life_and_leap_day():
    assert _cls({"warranty": "design_life"}, dt.datetime(2074, 6, 30)).status == "in"
    assert _cls({"warranty": "design_life"}, dt.datetime(2074, 7, 1)).status == "out"
    assert _cls({"warranty": "design_life"}, dt.datetime(2030, 1, 1), design_life=5).status == "out"
    leap = _cls(
        {"warranty": "years", "period": 1},
        dt.datetime(2025, 2, 28),
        handover=dt.datetime(2024, 2, 29),
    )
    assert leap.status == "in" and leap.until == dt.datetime(2025, 3, 1)


def test_seasons_count_only_seasons_starting_after_handover():
    # handed over 2024-12-01, inside the 2024/25 heating season: that one does not count
    assert season_end(dt.date(2024, 12, 1), 2, SEASONS["heating"]) == dt.date(2027, 3, 15)
    # handed over 2024-07-01: heating 2024/25 and 2025/26 count
    assert season_end(dt.date(2024, 7, 1), 2, SEASONS["heating"]) == dt.date(2026, 3, 15)
    assert season_end(dt.date(2024, 7, 1), 2, SEASONS["cooling"]) == dt.date(2026, 9, 30)
    spec = {"warranty": "seasons", "period": 2, "season_kinds": ["heating", "cooling"]}
    c = _cls(spec, dt.datetime(2026, 9, 30, 12))
    assert c.status == "in" and c.until == dt.datetime(2026, 10, 1)
    assert "2 heating seasons (11-15..03-15) and 2 cooling seasons (06-01..09-30)" in c.reason
    assert _cls(spec, dt.datetime(2026, 10, 1)).status == "out"
    heating_only = {"warranty": "seasons", "period": 2, "season_kinds": ["heating"]}
    assert _cls(heating_only, dt.datetime(2026, 3, 16)).status == "out"


def test_not_handed_over_and_not_a_warranty_item():
    pre = _cls({"warranty": "years", "period": 2}, dt.datetime(2024, 6, 1))
    assert pre.status == "in" and "not handed over yet" in pre.reason
    assert (
        _cls({"warranty": "years", "period": 2}, dt.datetime(2024, 6, 1), handover=None).status
        == "in"
    )
    na = _cls({"warranty": "none"}, dt.datetime(2025, 1, 1))
    assert na.status == "n/a" and "not a warranty item" in na.reason


def test_defaults_follow_the_construction_quality_regulation(crm):
    from crm_real_estate.settings import settings

    with crm.transaction(write=False):
        s = settings(crm)
    cats = s.categories
    assert cats["structure"]["warranty"] == "design_life" and s.design_life_years == 50
    assert cats["waterproofing"] == {**cats["waterproofing"], "warranty": "years", "period": 5}
    assert cats["heating_cooling"]["period"] == 2
    assert cats["heating_cooling"]["season_kinds"] == ["heating", "cooling"]
    for c in ("electrical", "plumbing", "decoration"):
        assert (cats[c]["warranty"], cats[c]["period"]) == ("years", 2)
    assert set(DEFAULT_SEASONS) == {"heating", "cooling"}


def test_request_is_classified_with_reason_on_the_record_and_timeline(crm):
    estate(crm)  # clock 2026-01-05: A1/1201 handed over 2024-07-01, A1/1202 on 2023-05-20
    r = leak(crm)
    assert r["warranty"] == "in" and r["warranty_until"] == dt.datetime(2026, 7, 1)
    assert "plumbing is covered for 2 years" in r["warranty_reason"]
    old = req.open_request(
        crm, "C-2", unit="JD/A1/1202", category="electrical", channel="visit", text="switch burnt"
    )
    assert old["warranty"] == "out" and "ended on 2025-05-19" in old["warranty_reason"]
    water = req.open_request(
        crm,
        "C-2",
        unit="JD/A1/1202",
        category="waterproofing",
        channel="fax",
        text="bathroom ceiling damp",
    )
    assert water["warranty"] == "in"
    tl = [e.summary for e in crm.records.timeline("C-2") if e.kind == "real_estate.warranty"]
    assert any("ended on 2025-05-19" in s for s in tl)


def test_project_design_life_overrides_config(crm):
    estate(crm)
    places.add_project(crm, "OLD", "Old Estate", design_life_years=1)
    places.add_building(crm, "OLD", "B")
    places.add_unit(crm, "OLD/B", "1", handover_at=HANDOVER)
    c = req.check_warranty(crm, "structure", unit="OLD/B/1")
    assert c["warranty"] == "out" and "design life of 1 years" in c["reason"]
    assert req.check_warranty(crm, "structure", unit="JD/A1/1201")["warranty"] == "in"


def test_common_parts_count_from_building_or_first_unit_handover(crm):
    estate(crm)
    c = req.check_warranty(crm, "public_areas", building="JD/A1", at=dt.datetime(2025, 6, 1))
    # earliest unit handover in A1 is 2023-05-20: two years ended 2025-05-19
    assert c["warranty"] == "out" and "2023-05-20" in c["reason"]
    places.add_building(crm, "JD", "A3", handover_at=dt.datetime(2025, 1, 1))
    assert req.check_warranty(crm, "public_areas", building="JD/A3")["warranty"] == "in"


@pytest.mark.crm(
    plugins=["real_estate"],
    config={
        "plugins": {
            "real_estate": {
                "categories": {
                    "plumbing": {"warranty": "years", "period": 3},
                    "lift": {"warranty": "years", "period": 1, "label": "电梯"},
                },
                "design_life_years": 70,
            }
        }
    },
)
def test_periods_come_from_config_merged_over_defaults(crm):
    estate(crm)
    at = dt.datetime(2026, 8, 1)
    assert req.check_warranty(crm, "plumbing", unit="JD/A1/1201", at=at)["warranty"] == "in"
    assert req.check_warranty(crm, "electrical", unit="JD/A1/1201", at=at)["warranty"] == "out"
    assert req.check_warranty(crm, "lift", building="JD/A1", at=at)["warranty"] == "out"
    assert "70 years" in req.check_warranty(crm, "structure", unit="JD/A1/1201")["reason"]


def test_unknown_season_kind_is_a_start_up_error(crm_factory):
    bad = {"boiler": {"warranty": "seasons", "period": 2, "season_kinds": ["winter"]}}
    with pytest.raises(
        ConfigError,
        match=r"^configuration: plugins.real_estate.categories.boiler.season_kinds: "
        r"unknown season 'winter'",
    ):
        crm_factory(
            plugins=["real_estate"], config={"plugins": {"real_estate": {"categories": bad}}}
        )


def test_config_schema_refuses_years_without_period(crm_factory):
    with pytest.raises(ConfigError, match="period"):
        crm_factory(
            plugins=["real_estate"],
            config={
                "plugins": {"real_estate": {"categories": {"plumbing": {"warranty": "years"}}}}
            },
        )


def test_override_keeps_the_reason_and_refuses_without_one(crm):
    estate(crm)
    r = leak(crm)
    with pytest.raises(ValidationError, match="needs a --reason"):
        req.set_warranty(crm, r["id"], "out", " ")
    assert req.get_request(crm, r["id"])["warranty"] == "in"
    r2 = req.set_warranty(crm, r["id"], "out", "pipe cut by the owner's renovation")
    assert r2["warranty"] == "out"
    assert "pipe cut by the owner's renovation (was in: in warranty" in r2["warranty_reason"]
