"""Shipped files speak to a user: no pointers to documents a user does not have
(working notes, source essays, design sketches) and no paths of the machine
the project was built on."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".py", ".md", ".toml", ".mako", ".txt", ".cfg", ".ini", ".sh", ".yml", ".yaml"}
SKIP_DIRS = {".git", ".venv", "__pycache__", "build", "_data", ".hypothesis"}

# (what it is, pattern); built so that this file does not match itself
INTERNAL = [
    ("a numbered source seed", re.compile(r"\bseeds?\s+0\d\d\b", re.I)),
    ("a source essay", re.compile(r"\bessays?\b", re.I)),
    (
        "a background document",
        re.compile(r"\b(DOMAIN|ARCHITECTURE|PERFORMANCE|STYLE)\.md\b|PLUGIN" + "_BRIEF"),
    ),
    ("the shared background folder", re.compile(r"(?<![\w.-])shared/", re.I)),
    ("a path of the build machine", re.compile(r"(?<![\w.])/work/")),
    ("a tracker number", re.compile(r"\bissue\s+#?\d+\b", re.I)),
]


def shipped_files() -> list[Path]:
    """Tracked and new (not ignored) files of the repository, else a walk of it."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        paths = [ROOT / p for p in listed]
    except (OSError, subprocess.CalledProcessError):
        paths = [
            p
            for p in ROOT.rglob("*")
            if not (SKIP_DIRS & set(p.relative_to(ROOT).parts))
            and not any(part.endswith(".egg-info") for part in p.parts)
        ]
    me = Path(__file__).resolve()
    return sorted(
        p
        for p in paths
        if p.is_file() and p.resolve() != me and (p.suffix in TEXT_SUFFIXES or not p.suffix)
    )


def internal_references(text: str) -> list[str]:
    """'line N: what (the match)' for every internal reference in ``text``."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for what, pattern in INTERNAL:
            for match in pattern.finditer(line):
                found.append(f"line {number}: {what} ({match.group(0)!r})")
    return found


def test_no_shipped_file_refers_to_internal_documents():
    files = shipped_files()
    assert any(p.name == "README.md" for p in files) and len(files) > 50
    offenders = {}
    for path in files:
        refs = internal_references(path.read_text(encoding="utf-8", errors="replace"))
        if refs:
            offenders[str(path.relative_to(ROOT))] = refs
    assert offenders == {}


@pytest.mark.parametrize(
    "text",
    [
        "ABC classification (seed 001 essay 1, 2.2)",
        "see the Essay on tickets",
        "the sketch in shared/ARCHITECTURE.md",
        "The domain: DOMAIN.md",
        "as PERFORMANCE.md measures",
        "docs/PLUGIN" + "_BRIEF.md",
        "Repository: /work/main",
        "fixes issue 13",
    ],
)
def test_each_kind_of_internal_reference_is_caught(text):
    assert internal_references(text)


@pytest.mark.parametrize(
    "text",
    [
        "generates data with a fixed seed and measures",
        "random.Random(seed).sample(buyers)",
        "scale 1,000,000 customers (seed 20260105)",
        "see docs/architecture.md",
        "the due date is before the issue date",
        "/usr/share/zoneinfo",
    ],
)
def test_ordinary_words_are_not_internal_references(text):
    assert internal_references(text) == []
