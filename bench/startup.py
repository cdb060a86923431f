"""Start-up time of the ``crm`` command against a bare Python interpreter.

    python bench/startup.py                      # median, min and max of 5 runs each
    python bench/startup.py --runs 9 --config crm-demo/crm.toml

Each row runs a fresh subprocess: ``python -c pass`` (the interpreter alone, the
floor), ``crm --version`` and ``crm --help`` (the latter with ``--config`` when
given, so the enabled plugins' groups are listed as a user sees them). The rows
are interleaved run by run, so load on a shared machine falls on all of them alike.
Target: ``crm --version`` and ``crm --help`` under 0.3 s. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 0.3


def crm_script() -> str:
    """The installed ``crm`` console script next to this interpreter."""
    script = Path(sys.executable).with_name("crm")
    if not script.exists():
        raise SystemExit(f"error: {script} not found; install crmcore (pip install -e .) first")
    return str(script)


def timed(argv: list[str], env: dict[str, str]) -> float:
    """Wall time of one run of ``argv``; a failing run stops the bench with its stderr."""
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"error: {' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per row (default 5)")
    parser.add_argument("--config", help="crm.toml for `crm --help` (lists its plugins)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    crm = crm_script()
    config = ["--config", args.config] if args.config else []
    rows = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "crm --version": [crm, "--version"],
        "crm --help" + (f" (--config {args.config})" if args.config else ""): [
            crm,
            *config,
            "--help",
        ],
    }
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(args.runs):
        for name, command in rows.items():
            times[name].append(timed(command, env))
    floor = statistics.median(times["python -c pass"])
    print(f"{'command':<60} {'median s':>9} {'min s':>7} {'max s':>7} {'- python':>9}  target")
    for name, samples in times.items():
        median = statistics.median(samples)
        target = (
            ""
            if name.startswith("python")
            else f"< {TARGET_S} s " + ("yes" if median < TARGET_S else "NO")
        )
        print(
            f"{name:<60} {median:>9.3f} {min(samples):>7.3f} {max(samples):>7.3f} "
            f"{median - floor:>9.3f}  {target}"
        )


if __name__ == "__main__":
    main()
