"""`crm demo`: a database with every installed plugin enabled, sample data, a readable summary."""

from __future__ import annotations

import json

from click.testing import CliRunner

from crmcore.cli import cli
from crmcore.plugins import installed


def test_demo_builds_a_database_and_shows_each_plugin(tmp_path, monkeypatch):
    monkeypatch.delenv("CRM_CONFIG", raising=False)
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    monkeypatch.delenv("CRM_AS", raising=False)
    runner = CliRunner()
    result = runner.invoke(cli, ["demo", "--dir", str(tmp_path / "demo"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert sorted(data["plugins"]) == sorted(installed())
    for name in installed():
        assert f"== {name} ==" in data["text"]
    config = data["config"]
    timeline = runner.invoke(cli, ["--config", config, "timeline", "C-1001", "--json"])
    assert timeline.exit_code == 0, timeline.output
    sources = {e["source"] for e in json.loads(timeline.stdout)}
    assert "core" in sources and len(sources) >= 1 + min(len(installed()), 2)
    again = runner.invoke(cli, ["demo", "--dir", str(tmp_path / "demo")])  # re-runnable
    assert again.exit_code == 0, again.output
