"""Optional dependencies: which extra of crmcore brings which module, and the one
line to show when a feature needs a module that is not installed.

numpy is a core dependency (every analytics run and label write computes over
the whole base with it); scipy comes with the ``analytics`` extra (only the
BG/NBD and Gamma-Gamma fit of ``crm analytics clv`` needs it); psycopg with the
``postgres`` extra.
"""

from __future__ import annotations

from crmcore.errors import MissingExtra

# module -> (what needs it, how to install it)
OPTIONAL: dict[str, tuple[str, str]] = {
    "scipy": ("the BG/NBD model (crm analytics clv)", "install crmcore[analytics]"),
    "psycopg": ("PostgreSQL", "install crmcore[postgres]"),
    "numpy": ("analytics", "reinstall crmcore (numpy is one of its dependencies)"),
    "fastapi": ("the HTTP API (crm serve)", "install crmcore[web]"),
    "starlette": ("the HTTP API (crm serve)", "install crmcore[web]"),
    "uvicorn": ("the HTTP API (crm serve)", "install crmcore[web]"),
    "jinja2": ("the staff console", "install crmcore[web]"),
    "argon2": ("passwords (crm staff password)", "install crmcore[web]"),
    "multipart": ("sign-in forms", "install crmcore[web]"),
    "authlib": ("single sign-on (OIDC)", "install crmcore[oidc]"),
    "nats": ("the NATS channel", "install crmcore[nats]"),
}


def missing(error: ImportError) -> MissingExtra | None:
    """The one-line error for an import of an optional module that failed, or
    ``None`` when the missing module is not one of them (a genuine bug)."""
    top = (error.name or "").split(".")[0]
    if top not in OPTIONAL:
        return None
    what, fix = OPTIONAL[top]
    return MissingExtra(f"{what} needs {top}, which is not installed: {fix}")
