"""Out-of-stock special offers: a waiting list per item.

A customer leaves their contact for a sold-out offer item; when the item is
restocked, everyone waiting is notified once, in request order, and leaves the
list (status ``notified``, or ``no_contact`` when SMS consent or a phone is missing).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert, select, update

from crm_retail import _util
from crm_retail.settings import settings
from crm_retail.tables import waitlist
from crmcore import Conflict
from crmcore.parse import clean_text
from crmcore.present import show_phone
from crmcore.schema import customers


def as_dict(crm: Any, r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "customer_id": r.customer_id,
        "item": r.item,
        "offer": r.offer,
        "contact_phone": show_phone(crm, r.contact_phone),
        "requested_at": r.requested_at,
        "status": r.status,
        "notified_at": r.notified_at,
        "message_id": r.message_id,
    }


def add(
    crm: Any,
    customer: Any,
    *,
    item: str,
    offer: str | None = None,
    phone: str | None = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    with crm.transaction(command="retail waitlist add"):
        c = _util.customer_row(crm, customer)
        item = clean_text(item, field="item", max_len=200) or ""
        offer = clean_text(offer, field="offer", max_len=200, required=False)
        contact = _util.phone(crm, phone) if phone else None
        key = _util.key_of(item)
        dup = crm.db.execute(
            select(waitlist.c.id).where(
                waitlist.c.customer_id == c.id,
                waitlist.c.item_key == key,
                waitlist.c.status == "waiting",
            )
        ).first()
        if dup is not None:
            raise Conflict(f"customer {c.id} is already waiting for {item!r} (entry {dup.id})")
        when = at or crm.now()
        res = crm.db.execute(
            insert(waitlist).values(
                customer_id=c.id,
                item=item,
                item_key=key,
                offer=offer,
                contact_phone=contact,
                requested_at=when,
                status="waiting",
            )
        )
        wid = res.inserted_primary_key[0]
        crm.records.add_timeline_entry(
            c.id,
            "retail.waitlist",
            f"waiting for sold-out {item}" + (f" ({offer})" if offer else ""),
            at=when,
            source=_util.SOURCE,
            data={"waitlist_id": wid},
        )
        return as_dict(crm, crm.db.execute(select(waitlist).where(waitlist.c.id == wid)).one())


def restock(crm: Any, item: str) -> dict[str, Any]:
    """The item is back: notify everyone waiting, once, in request order."""
    with crm.transaction(command="retail waitlist restock"):
        _util.require_unrestricted(crm, "announce a restock")
        item = clean_text(item, field="item", max_len=200) or ""
        s = settings(crm)
        now = crm.now()
        rows = crm.db.execute(
            select(waitlist, customers.c.name)
            .join(customers, customers.c.id == waitlist.c.customer_id)
            .where(waitlist.c.item_key == _util.key_of(item), waitlist.c.status == "waiting")
            .order_by(waitlist.c.requested_at, waitlist.c.id)
        ).all()
        notified: list[int] = []
        no_contact: list[int] = []
        for r in rows:
            msg = crm.messages.enqueue(
                "sms",
                customer=r.customer_id,
                to=r.contact_phone,
                template="retail.restock",
                values={
                    "name": r.name,
                    "item": r.item,
                    "store": s["store_name"],
                    "offer": f" ({r.offer})" if r.offer else "",
                },
                key=f"retail:restock:{r.id}",
                source=_util.SOURCE,
                # asked for: the customer left this phone to hear of the restock
                transactional=True,
            )
            status = "notified" if msg is not None else "no_contact"
            crm.db.execute(
                update(waitlist)
                .where(waitlist.c.id == r.id)
                .values(status=status, notified_at=now, message_id=msg.id if msg else None)
            )
            (notified if msg else no_contact).append(r.id)
        return {"item": item, "notified": notified, "no_contact": no_contact, "at": now}


def list_waiting(crm: Any, *, item: str | None = None, all_: bool = False) -> list[dict[str, Any]]:
    with crm.transaction(write=False):
        q = select(waitlist).order_by(waitlist.c.requested_at, waitlist.c.id)
        if item is not None:
            q = q.where(waitlist.c.item_key == _util.key_of(item))
        if not all_:
            q = q.where(waitlist.c.status == "waiting")
        return [as_dict(crm, r) for r in crm.db.execute(q)]
