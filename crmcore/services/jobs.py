"""``crm.jobs``: the enabled plugins' jobs, run as of a time, each in its own transaction."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterable
from typing import Any

from crmcore.errors import AccessDenied, CRMError, NotFound
from crmcore.registry import Job
from crmcore.schema import job_runs
from crmcore.services.base import Service
from crmcore.storage._driver import connection


class JobService(Service):
    """The plugins' jobs: list them, run them (all or some) as of a time."""

    area = "jobs"

    def __call__(self) -> dict[str, Job]:
        """``crm.jobs()``, the flat name of :meth:`list`, kept for one release."""
        warnings.warn(
            "crm.jobs() is deprecated; use crm.jobs.list()", DeprecationWarning, stacklevel=2
        )
        return self.list()

    # -- jobs -------------------------------------------------------------------
    def run(
        self, names: Iterable[str] | None = None, *, at: dt.datetime | None = None
    ) -> list[dict[str, Any]]:
        """Run jobs (all, or those named) as of ``at``, each in its own transaction.

        A job that fails rolls back alone and is reported; the others still run.
        Each result has ``status`` ``"ok"`` (with the job's ``summary``) or
        ``"failed"`` (with ``error``, one line). A failed run is recorded in
        ``job_runs`` too, in a transaction of its own after the rollback, with
        the summary ``{"failed": true, "error": ...}``. The principal is checked
        before any job runs: a refused run runs and commits nothing.
        Re-running a job for the same ``at`` must not duplicate its effects (jobs
        use keys), so a killed or failed run can simply be run again.
        """
        available = self.list()
        names = list(names or available)
        unknown = [n for n in names if n not in available]
        if unknown:
            raise NotFound(f"unknown job(s) {unknown}; jobs: {sorted(available) or 'none'}")
        self.require_runner()
        when = at or self.now()
        at_crm = self.crm.at(when)
        results = []
        for name in names:
            result: dict[str, Any] = {
                "job": name,
                "at": when.isoformat(),
                "owner": self.plugins.owners[("job", name)],
            }
            try:
                summary = plain(_run_job(at_crm, name, available[name], when))
            except Exception as e:  # any failure of one job: rolled back, reported, recorded
                error = one_line(e)
                try:
                    _record_job_run(at_crm, name, when, {"failed": True, "error": error})
                except CRMError as unrecorded:  # the database refused even that: say so
                    error += f" (not recorded in job_runs: {one_line(unrecorded)})"
                result |= {"status": "failed", "error": error}
            else:
                result |= {"status": "ok", "summary": summary}
            results.append(result)
        return results

    def require_runner(self) -> None:
        """Refuse, before any job runs, a principal who may not run jobs: jobs work
        set-based over the whole base and write, so they need an active principal
        with scope 'all' and 'write' (the system, an admin)."""
        with self.crm.transaction(write=False, command="jobs run"):
            p = self.db.principal
        if not p.active:
            raise AccessDenied(f"{p.key} has departed and may not run jobs; nothing was run")
        if not p.can("write"):
            raise AccessDenied(
                f"{p.key} may not run jobs: they change data and need the 'write' permission"
            )
        if not p.unrestricted:
            raise AccessDenied(
                f"{p.key} may not run jobs: they cover every customer; "
                "run them as an admin (scope 'all')"
            )

    def list(self) -> dict[str, Job]:
        """The enabled plugins' jobs by name (sorted), as their :class:`~crmcore.registry.Job`
        objects; the core's ``core.lifecycle`` only when ``[[crm.lifecycle.rules]]``
        are configured."""
        from crmcore import lifecycle_rules

        found = dict(sorted(self.plugins.declared.get("job", {}).items()))
        if not lifecycle_rules.rules_of(self.crm):
            found.pop(lifecycle_rules.JOB_NAME, None)
        return found



def _run_job(crm: Any, name: str, job: Job, when: dt.datetime) -> dict[str, Any]:
    """Run one job and record it in ``job_runs``, in one transaction."""
    with crm.transaction(command=f"jobs run {name}"):
        summary = job.run(crm, when) or {}
        connection(crm.db).execute(
            job_runs.insert().values(
                job=name, as_of=when, finished_at=when, summary=plain(summary)
            )
        )
    return summary


def _record_job_run(crm: Any, name: str, when: dt.datetime, summary: dict[str, Any]) -> None:
    """Record a job run that failed, in a transaction of its own (the job's own
    transaction was rolled back)."""
    with crm.transaction(command=f"jobs run {name}"):
        connection(crm.db).execute(
            job_runs.insert().values(job=name, as_of=when, finished_at=when, summary=summary)
        )


def one_line(error: Exception) -> str:
    """An error as one line: a CRMError's message, else the exception's type and
    first line (a bug in a job, not a user mistake)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, CRMError):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def plain(value: Any) -> Any:
    from crmcore.storage.audit import jsonable

    return jsonable(value)
