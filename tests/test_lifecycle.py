"""Lifecycle stages: configured transitions allowed, others refused, all recorded."""

from __future__ import annotations

import pytest
from conftest import Recorder

from crmcore import ConfigError, TransitionError, ValidationError
from crmcore.config import from_dict


def test_default_path_and_win_back(crm):
    c = crm.customers.add("Ann")
    path = ["new", "developing", "stable", "declining", "lost", "developing"]
    for stage in path:
        crm.customers.change_stage(c, stage, reason=f"to {stage}")
    history = crm.customers.stage_history(c)
    assert [h.to_stage for h in history] == ["prospect", *path]
    assert history[-1].from_stage == "lost" and history[-1].reason == "to developing"
    assert crm.customers.get(c.id).stage == "developing"


@pytest.mark.parametrize(
    ("start", "target"), [("prospect", "stable"), ("new", "prospect"), ("stable", "new")]
)
def test_forbidden_transitions_are_refused_and_change_nothing(crm, start, target):
    c = crm.customers.add("Ann", stage=start)
    with pytest.raises(
        TransitionError, match=f"cannot move from '{start}' to '{target}'; allowed from"
    ):
        crm.customers.change_stage(c, target)
    assert crm.customers.get(c.id).stage == start
    assert len(crm.customers.stage_history(c)) == 1


def test_unknown_stage_is_refused(crm):
    c = crm.customers.add("Ann")
    with pytest.raises(ValidationError, match="stage 'vip' is not configured"):
        crm.customers.change_stage(c, "vip")


def test_stage_change_fires_the_hook_with_the_change(crm_factory):
    rec = Recorder()
    crm = crm_factory(plugins=["recorder"], extra_plugins={"recorder": rec})
    c = crm.customers.add("Ann")
    crm.customers.change_stage(c, "new")
    assert ("stage_changed", ("prospect", "new")) in rec.calls


def test_configured_lifecycle(crm_factory):
    lifecycle = {
        "stages": ["exploration", "formation", "stability", "decline"],
        "initial": "exploration",
        "transitions": {
            "exploration": ["formation"],
            "formation": ["stability"],
            "stability": ["decline"],
            "decline": ["stability"],
        },
    }
    crm = crm_factory(config={"crm": {"lifecycle": lifecycle}})
    c = crm.customers.add("Plant")
    assert c.stage == "exploration"
    crm.customers.change_stage(c, "formation")
    with pytest.raises(TransitionError):
        crm.customers.change_stage(c, "decline")


def test_lifecycle_config_naming_an_unknown_stage_is_refused():
    with pytest.raises(ConfigError, match=r"crm.lifecycle.transitions.a: unknown stage 'zz'"):
        from_dict(
            {
                "crm": {
                    "lifecycle": {
                        "stages": ["a", "b"],
                        "initial": "a",
                        "transitions": {"a": ["zz"]},
                    }
                }
            }
        )
