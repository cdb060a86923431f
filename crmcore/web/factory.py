"""The application factory ``crm serve`` gives uvicorn (``factory=True``): each
worker process builds its own application from the environment the command
set (``CRM_CONFIG``, ``CRM_DATABASE_URL``)."""

from __future__ import annotations

import os
from typing import Any

from crmcore import config as config_mod


def app_from_environment() -> Any:
    """The ASGI application for the configuration the environment names."""
    from crmcore.web import create_app

    return create_app(config_mod.load(database=os.environ.get("CRM_DATABASE_URL")))
