"""The HTTP API (and the staff console): an ASGI application over the same services
as the command line.

Needs the ``web`` extra (``pip install 'crmcore[web]'``). ``create_app(config)``
builds the application; it keeps no state beyond caches, so any number of
processes on any number of machines can serve one PostgreSQL database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmcore.errors import MissingExtra

if TYPE_CHECKING:
    from fastapi import FastAPI

WEB_EXTRA = "the HTTP API needs the web extra, which is not installed: install crmcore[web]"


def _require_web() -> None:
    try:
        import fastapi  # noqa: F401
    except ImportError:
        raise MissingExtra(WEB_EXTRA) from None


def create_app(config: Any = None, **kwargs: Any) -> FastAPI:
    """The ASGI application for ``config`` (a :class:`~crmcore.config.Config`, a path to
    crm.toml, or None for ``CRM_CONFIG`` / ./crm.toml). ``kwargs`` go to the CRM
    (e.g. ``clock=`` in tests)."""
    _require_web()
    from crmcore.web.app import build_app

    return build_app(config, **kwargs)


def request_crm(*args: Any, **kwargs: Any) -> Any:
    """FastAPI dependency: the CRM acting as the request's principal (see
    :func:`crmcore.web.deps.request_crm`)."""
    _require_web()
    from crmcore.web.deps import request_crm as dependency

    return dependency(*args, **kwargs)


__all__ = ["WEB_EXTRA", "create_app", "request_crm"]
