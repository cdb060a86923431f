"""README.md, followed literally from top to bottom in an empty directory: every
``sh`` command exits 0, or 1 where the README marks a refusal (``# exits 1: ...``).

Installing and running the test suite are skipped (this runs inside both). The
plugin of "Writing a plugin" is built from the README's own files and installed
the way pip would (a ``.dist-info`` on the path), then its commands run in its
directory with the README's crm.toml.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from crmcore import readmewalk
from crmcore.plugins import installed

README = Path(__file__).resolve().parents[1] / "README.md"
PLUGIN_SECTION = "Writing a plugin"


def install_greeter(blocks: list[readmewalk.Block], where: Path, site: Path) -> Path:
    """The README's plugin, written out and installed into ``site``; its directory."""
    section = [b for b in blocks if b.heading == PLUGIN_SECTION]
    pyproject = next(b for b in section if b.lang == "toml" and "[project]" in b.text)
    module = next(b for b in section if b.lang == "python")
    config = next(b for b in section if b.lang == "toml" and b.text.startswith("# crm.toml"))
    project = where / "crm-greeter"
    (project / "crm_greeter").mkdir(parents=True)
    (project / "pyproject.toml").write_text(pyproject.text, encoding="utf-8")
    (project / "crm_greeter" / "__init__.py").write_text(module.text, encoding="utf-8")
    (project / "crm.toml").write_text(config.text, encoding="utf-8")
    (site / "crm_greeter").symlink_to(project / "crm_greeter", target_is_directory=True)
    info = site / "crm_greeter-0.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: crm-greeter\nVersion: 0.3.0\n", encoding="utf-8"
    )
    assert 'greeter = "crm_greeter"' in pyproject.text
    (info / "entry_points.txt").write_text(
        "[crmcore.plugins]\ngreeter = crm_greeter\n", encoding="utf-8"
    )
    return project


@pytest.fixture
def greeter_site(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield site
    sys.modules.pop("crm_greeter", None)


@pytest.mark.slow
def test_the_readme_walks_from_top_to_bottom(tmp_path, greeter_site):
    blocks = readmewalk.blocks(README.read_text(encoding="utf-8"))
    work = tmp_path / "work"
    work.mkdir()
    done: list[tuple[readmewalk.Step, readmewalk.Outcome | None]] = []
    for block in blocks:
        if block.lang != "sh":
            continue
        if block.heading == PLUGIN_SECTION:
            project = install_greeter(blocks, tmp_path, greeter_site)
            done += readmewalk.walk(README, project, only=[block])
            greeting = done[-1][1]
            assert greeting is not None and "Ni hao, Fangfang!" in greeting.stdout
        else:
            done += readmewalk.walk(README, work, only=[block])

    ran = [step.text for step, outcome in done if outcome is not None]
    assert "crm demo" in ran  # the install line's own command
    assert {step.skipped for step, _ in done if step.skipped} == {"install", "test suite"}
    assert sum(step.expect == 1 for step, _ in done) >= 3  # the refusals shown ran too
    assert len(ran) >= 30
    assert sorted(installed()) != [] and (work / "crm-demo" / "crm.toml").exists()


def test_the_walk_refuses_a_command_that_fails(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n```sh\ncrm customer add --name ''\n```\n", encoding="utf-8")
    with pytest.raises(AssertionError, match=r"README.md:4: crm customer add .*exit status 1"):
        readmewalk.walk(readme, tmp_path)


def test_a_marked_refusal_must_fail_with_one_error_line(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("```sh\ncrm --version   # exits 1: it does not\n```\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="exit status 0, expected 1"):
        readmewalk.walk(readme, tmp_path)
    readme.write_text(
        "```sh\ncrm --config nowhere.toml customer list   # exits 1: no such file\n```\n",
        encoding="utf-8",
    )
    [(step, outcome)] = readmewalk.walk(readme, tmp_path)
    assert outcome is not None and outcome.stderr.startswith("error: ")


def test_install_lines_keep_their_crm_command_and_heredocs_run_in_sh(tmp_path):
    text = (
        "```sh\n"
        'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test]" && crm --version\n'
        "cat > a.csv <<'EOF'\nx,y\n# not a comment\nEOF\n"
        "python -m pytest -q\n"
        "```\n"
    )
    [block] = readmewalk.blocks(text)
    steps = readmewalk.steps(block)
    assert [(s.skipped, s.argv) for s in steps] == [
        ("install", None),
        ("install", None),
        ("install", None),
        (None, ("--version",)),
        (None, None),
        ("test suite", None),
    ]
    outcome = readmewalk.run(steps[4], tmp_path)
    assert outcome.exit_code == 0 and (tmp_path / "a.csv").read_text() == "x,y\n# not a comment\n"


def test_pipes_and_redirections_run_in_sh_as_written(tmp_path):
    [block] = readmewalk.blocks("```sh\necho 'a # b' | tr a-z A-Z > out.txt   # shout\n```\n")
    [step] = readmewalk.steps(block)
    assert step.argv is None and step.expect == 0
    assert readmewalk.run(step, tmp_path).exit_code == 0
    assert (tmp_path / "out.txt").read_text() == "A # B\n"
