"""Web hooks: what a plugin adds to the HTTP API (and, later, the console).

Called once when the web application is built (``crmcore.web.create_app``),
outside any transaction, for enabled plugins only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from crmcore.hooks.markers import hookspec

if TYPE_CHECKING:
    from fastapi import APIRouter


@hookspec
def crm_api_routers() -> Iterable[APIRouter]:
    """Return FastAPI ``APIRouter`` objects with the plugin's HTTP operations.

    Each router is mounted under ``/api/v1/<plugin>/`` (the plugin's entry-point
    name) and documented in the same OpenAPI description as the core's routes.
    An operation gets the CRM acting as the caller's principal through the
    dependency :func:`crmcore.web.request_crm`, so the access filter, masking and
    audit apply exactly as on the command line; a :class:`~crmcore.errors.CRMError`
    it raises becomes an ``application/problem+json`` answer with the same one-line
    message the CLI prints.
    """
