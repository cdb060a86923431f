"""Building blocks for a plugin's HTTP routes (``crm_api_routers``).

A plugin's ``api.py`` imports this module (and FastAPI) only when the web
application is built, so the plugin itself still imports without the web extra::

    from crmcore.web.routes import CRMDep, RequestModel

    router = APIRouter()

    class JoinRequest(RequestModel):
        customer: str

    @router.post("/members", status_code=201)
    def join(body: JoinRequest, crm: CRMDep) -> dict[str, Any]:
        return members.join(crm, body.customer)

- :data:`CRMDep` is the CRM acting as the request's principal
  (:func:`crmcore.web.deps.request_crm`): every read and write goes through the
  access filter, so another rep's customer answers 404 exactly like a missing one.
- :class:`RequestModel` refuses unknown fields (a misspelt field is a 422 naming
  it, not silently ignored).
- :func:`listing` gives every plugin's lists one shape: ``{"items": [...], "count": n}``.
- A POST that creates answers ``201`` with the created resource, as the service
  returned it (the route declares ``status_code=201``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from fastapi import Depends
from pydantic import BaseModel, ConfigDict

from crmcore.web.deps import request_crm

CRMDep = Annotated[Any, Depends(request_crm)]
"""A route parameter typed ``crm: CRMDep`` receives the CRM acting as the caller."""


class RequestModel(BaseModel):
    """The base of every request body: unknown fields are refused, text is stripped
    of surrounding blanks (the service still checks lengths and content)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def listing(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A list answer: ``{"items": [...], "count": n}`` (an object, so fields such as a
    next-page cursor can be added later without breaking clients)."""
    rows = [dict(i) for i in items]
    return {"items": rows, "count": len(rows)}


__all__ = ["CRMDep", "RequestModel", "listing"]
