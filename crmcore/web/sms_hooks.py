"""``POST /api/v1/hooks/sms/{channel}``: delivery receipts and replies pushed by an
SMS gateway.

Authenticated by the push itself, not by a staff token: a generic gateway
(``kind = "sms_http"``) signs the raw body with HMAC-SHA256 (see
:mod:`crmcore.channels.sms_http`); Alibaba Cloud signs nothing, so for an
``aliyun`` channel, and only there, the secret token in the URL's ``token``
query parameter stands in for a signature. A verified push is applied as the
system principal (:func:`crmcore.channels.receipts.apply`): receipts update
their messages' delivery status, replies go to ``crm.messages.receive_sms`` with
``delivered_by`` the channel's name. A push repeated by the gateway is
recognised by the gateway's ids and not applied twice.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from crmcore.access import SYSTEM
from crmcore.channels import aliyun, receipts, sms_http
from crmcore.errors import ConfigError
from crmcore.web.deps import base_crm

MAX_PUSH_BYTES = 1_000_000
router = APIRouter()


async def _body(request: Request) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_PUSH_BYTES:
            raise HTTPException(413, f"a push is at most {MAX_PUSH_BYTES} bytes")
    return body


@router.post("/hooks/sms/{channel}", tags=["hooks"])
async def sms_push(channel: str, request: Request) -> Any:
    """Receipts and replies from the gateway of SMS channel ``channel``."""
    crm = base_crm(request)
    table = crm.config.channels.get(channel)
    if table is None or table["kind"] not in ("sms_http", "aliyun"):
        raise HTTPException(404, f"no SMS channel {channel!r} is configured")
    where = f"{crm.config.where}: channels.{channel}"
    zone = crm.config.core.get("timezone")
    body = await _body(request)
    try:
        if table["kind"] == "aliyun":
            verified = aliyun.verify(table, where, request.query_params.get("token"))
        else:
            given = request.headers.get(table["signature_header"])
            verified = sms_http.verify(table, where, body, given)
    except ConfigError:  # no secret to check against: say so without naming the setup
        raise HTTPException(503, f"receipts of channel {channel!r} are not configured") from None
    if not verified:
        what = "token" if table["kind"] == "aliyun" else f"{table['signature_header']} signature"
        raise HTTPException(401, f"the push's {what} is missing or wrong")
    if table["kind"] == "aliyun":
        events = aliyun.parse_push(body, zone)
    else:
        events = sms_http.parse_push(table, body, zone)
    system = crm.as_(SYSTEM, command=f"api:POST /api/v1/hooks/sms/{channel}")
    counts = await run_in_threadpool(receipts.apply, system, channel, events)
    if table["kind"] == "aliyun":
        return JSONResponse(aliyun.ACCEPTED)
    return {"ok": True, **counts}
