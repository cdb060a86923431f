"""The benchmark script still runs end to end (tiny scale; nothing is timed here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "run.py"


def test_bench_runs_at_a_tiny_scale(tmp_path):
    out = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--scale",
            "300:3000",
            "--repeat",
            "1",
            "--reads",
            "5",
            "--writes",
            "3",
            "--workdir",
            str(tmp_path),
            "--write-results",
            "--results",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = out.read_text(encoding="utf-8")
    for what in (
        "import 3,000 transactions",
        "ABC",
        "RFM",
        "overdue",
        "BG/NBD fit",
        "card as a rep, by phone",
        "card as a supervisor",
        "single write as a rep",
    ):
        assert what in text, what
    assert (
        "same classes: True" in text
        and "same scores: True" in text
        and "same customers: True" in text
    )
