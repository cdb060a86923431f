"""The plugin's README, followed literally in an empty directory: every ``sh``
command exits 0, or 1 where the README marks a refusal (``# exits 1: ...``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmcore.readmewalk import walk

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_the_readme_walks_from_top_to_bottom(tmp_path):
    done = walk(README, tmp_path)
    ran = [step for step, outcome in done if outcome is not None]
    assert len(ran) >= 15 and any(step.expect == 1 for step in ran)
    assert ran[1].argv == ("init",)  # after writing crm.toml, the first command
