"""Building the ASGI application: core routers, plugin routers, error handlers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from crmcore import __version__
from crmcore import config as config_mod
from crmcore.access import SYSTEM
from crmcore.auth.settings import web_settings
from crmcore.web import problems, sms_hooks
from crmcore.web.api import core_routers
from crmcore.web.authn import make_authenticator
from crmcore.web.guard import Guard

API_PREFIX = "/api/v1"


def _load_config(config: Any) -> Any:
    if config is None or isinstance(config, str):
        return config_mod.load(config)
    return config


def build_app(config: Any = None, **kwargs: Any) -> FastAPI:
    """See :func:`crmcore.web.create_app`."""
    from crmcore.service import CRM

    cfg = _load_config(config)
    crm = CRM(cfg, **kwargs)
    crm.admin.check_schema()
    app = FastAPI(
        title="crmcore",
        version=__version__,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        responses=problems.PROBLEM_RESPONSES,
    )
    app.state.crm = crm
    settings = web_settings(cfg)
    system = crm.as_(SYSTEM, command="api")
    app.state.web_settings = settings
    app.state.system_crm = system
    app.state.authenticate = make_authenticator(system)
    app.add_middleware(Guard, crm=system, settings=settings)
    problems.install(app)
    for router in core_routers():
        app.include_router(router, prefix=API_PREFIX)
    # gateways' receipts and replies: authenticated by their signature, not a token
    app.include_router(sms_hooks.router, prefix=API_PREFIX)
    mount_plugin_routers(app, crm)
    return app


def mount_plugin_routers(app: FastAPI, crm: Any) -> None:
    """Each enabled plugin's routers under ``/api/v1/<plugin>/``, tagged with its name."""
    for name, routers in crm.plugins.each("crm_api_routers"):
        for router in routers or ():
            app.include_router(router, prefix=f"{API_PREFIX}/{name}", tags=[name])
