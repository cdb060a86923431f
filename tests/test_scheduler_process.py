"""A real ``crm scheduler`` process: SIGTERM lets the job in hand finish."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from sqlalchemy import select

from crmcore.schema import job_ticks
from crmcore.storage._driver import connection

SLOW_JOB = """
import os, time
from crmcore import Job, hookimpl

def run(crm, at):
    with open(os.environ["JOB_LOG"], "a") as f:
        f.write("started\\n")
    time.sleep(2)
    with open(os.environ["JOB_LOG"], "a") as f:
        f.write("finished\\n")
    return {"slept": 2}

@hookimpl
def crm_jobs():
    return [Job(name="slowjob.nap", run=run, schedule="every 1 minutes")]
"""


def test_sigterm_lets_the_job_in_hand_finish(crm, tmp_path):
    site = tmp_path / "site"
    dist = site / "slowjob-0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "slowjob.py").write_text(SLOW_JOB)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: slowjob\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[crmcore.plugins]\nslowjob = slowjob\n")
    toml = tmp_path / "crm.toml"
    toml.write_text(f'[crm]\ndatabase = "{crm.config.database}"\nplugins = ["slowjob"]\n')
    log = tmp_path / "job.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env["PYTHONPATH"] = str(site) + os.pathsep + env.get("PYTHONPATH", "")
    env["JOB_LOG"] = str(log)
    proc = subprocess.Popen(
        [sys.executable, "-m", "crmcore", "--config", str(toml), "scheduler", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while not log.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert log.read_text().splitlines() == ["started", "finished"]
    ticks = [json.loads(line) for line in out.splitlines()]
    assert [(t["job"], t["status"]) for t in ticks if t["job"] == "slowjob.nap"] == [
        ("slowjob.nap", "ok")
    ]
    with crm.transaction(write=False):
        rows = connection(crm.db).execute(
            select(job_ticks.c.status).where(job_ticks.c.job == "slowjob.nap")
        ).all()
    assert [r.status for r in rows] == ["ok"]
