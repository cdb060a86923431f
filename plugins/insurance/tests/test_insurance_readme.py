"""The plugin's README, followed literally in an empty directory: every ``sh``
command exits 0, or 1 where the README marks a refusal (``# exits 1: ...``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmcore.readmewalk import assert_walks

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_the_readme_walks_from_top_to_bottom(tmp_path):
    assert_walks(README, tmp_path, at_least=15)
