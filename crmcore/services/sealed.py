"""Encrypted customer attributes in the customer operations (see
:mod:`crmcore.protect.crypto`): values of the designated attributes are
encrypted before they are written (so neither the row nor its audit entry holds
them in the clear) and decrypted when read through the services for a
principal with 'pii'; any other principal sees the masked form."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs
from sqlalchemy import bindparam, select, update

from crmcore.entities import Customer
from crmcore.errors import AccessDenied
from crmcore.masking import mask
from crmcore.protect import crypto
from crmcore.schema import customers
from crmcore.services.base import operation
from crmcore.services.customers import CustomerService
from crmcore.services.records import RecordsService
from crmcore.services.refs import customer_row
from crmcore.storage._driver import connection

REENCRYPT_BATCH = 500


class Sealing:
    """The designated attributes of a CRM and their keys (``crm.sealing``); a bad
    designation fails at start-up."""

    def __init__(self, crm: Any) -> None:
        self.crm = crm
        self.encrypted = crypto.designated(crm)
        self._keys: crypto.Keyring | None = None

    def keyring(self) -> crypto.Keyring:
        if self._keys is None:
            self._keys = crypto.keyring(self.crm.config)
        return self._keys

    @staticmethod
    def field(name: str) -> str:
        return f"{crypto.FIELD_PREFIX}{name}"

    def split(self, values: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the values of encrypted attributes, the others)."""
        secret = {k: v for k, v in (values or {}).items() if k in self.encrypted}
        rest = {k: v for k, v in (values or {}).items() if k not in self.encrypted}
        return secret, rest

    def store(self, cid: int, secret: Mapping[str, Any]) -> None:
        """Write the encrypted values (None removes one) into the customer's attributes."""
        db = self.crm.db
        row = connection(db).execute(
            select(customers.c.attributes).where(customers.c.id == cid)
        ).one()
        merged = dict(row.attributes or {})
        keys = self.keyring()
        for name, value in secret.items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = keys.seal(self.field(name), value)
        db.execute(
            update(customers)
            .where(customers.c.id == cid)
            .values(attributes=merged, updated_at=self.crm.now())
        )

    def shown(self, customer: Customer) -> Customer:
        """The customer with its encrypted attributes decrypted (principal with
        'pii') or masked (any other)."""
        sealed = [k for k in self.encrypted if crypto.is_sealed(customer.attributes.get(k))]
        if not sealed:
            return customer
        values = dict(customer.attributes)
        if self.crm.may_see_pii():
            keys = self.keyring()
            for name in sealed:
                values[name] = keys.open(self.field(name), values[name])
        else:
            for name in sealed:
                values[name] = mask(values[name])
        return attrs.evolve(customer, attributes=values)

    def _batches(self) -> Iterator[Sequence[Any]]:
        """The customers' (id, attributes) in id order, a batch at a time."""
        last = 0
        while True:
            with self.crm.transaction(write=False):
                rows = connection(self.crm.db).execute(
                    select(customers.c.id, customers.c.attributes)
                    .where(customers.c.id > last)
                    .order_by(customers.c.id)
                    .limit(REENCRYPT_BATCH)
                ).all()
            if not rows:
                return
            last = rows[-1].id
            yield rows

    def rotate_key(self) -> dict[str, Any]:
        """Re-encrypt every encrypted value sealed with a key other than the current
        one, ``REENCRYPT_BATCH`` customers per transaction (an interrupted run is
        resumed by running it again). Needs an unrestricted principal with 'pii'
        and 'admin'."""
        crm = self.crm
        with crm.transaction(write=False):
            p = crm.db.principal
            if not (p.unrestricted and p.can("pii") and p.can("admin")):
                raise AccessDenied(
                    f"{p.key} may not re-encrypt personal data: needs 'admin' and 'pii' "
                    "over every customer"
                )
        keys = self.keyring()
        changed = 0
        for rows in self._batches():
            updates = []
            for row in rows:
                values = dict(row.attributes or {})
                stale = [
                    k
                    for k in self.encrypted
                    if crypto.is_sealed(values.get(k))
                    and crypto.key_id_of(values[k]) != keys.current
                ]
                for name in stale:
                    field = self.field(name)
                    values[name] = keys.seal(field, keys.open(field, values[name]))
                if stale:
                    updates.append({"cid": row.id, "attributes": values})
            if updates:
                with crm.transaction(command="protect rotate-key"):
                    connection(crm.db).execute(
                        update(customers)
                        .where(customers.c.id == bindparam("cid"))
                        .values(attributes=bindparam("attributes")),
                        updates,
                    )
                    crm.db.audit(
                        "customers",
                        None,
                        "rotate_key",
                        None,
                        {"customers": len(updates), "key": keys.current},
                        customer_id=None,
                    )
                changed += len(updates)
        return {"key": keys.current, "customers": changed}


class SealedCustomers(CustomerService):
    """``crm.customers`` with the designated attributes stored encrypted."""

    @operation()
    def add(self, name: str, **kwargs: Any) -> Customer:
        """Create a customer (see :meth:`CustomerService.add`); the values of
        encrypted attributes are stored encrypted. Hooks see the customer without
        them: their plain values exist only in the caller's hands."""
        sealing = self.crm.sealing
        secret, rest = sealing.split(kwargs.get("attributes"))
        if not secret:
            return sealing.shown(super().add(name, **kwargs))
        self.crm.validate_attributes({k: v for k, v in secret.items() if v is not None})
        p, e = self._norm_contacts(kwargs.get("phone"), kwargs.get("email"))
        if self.match(phone=p, email=e, external_id=kwargs.get("external_id")):
            return sealing.shown(super().add(name, **kwargs))  # the existing one
        made = super().add(name, **{**kwargs, "attributes": rest})
        sealing.store(made.id, secret)
        return self.get(made.id)

    @operation()
    def update(self, ref: Any, **changes: Any) -> Customer:
        """Change a customer (see :meth:`CustomerService.update`); encrypted
        attributes are written encrypted (hooks see the rest of the change)."""
        sealing = self.crm.sealing
        if "attributes" not in changes:
            return sealing.shown(super().update(ref, **changes))
        secret, rest = sealing.split(changes["attributes"])
        if not secret:
            return sealing.shown(super().update(ref, **changes))
        self.crm.validate_attributes({k: v for k, v in secret.items() if v is not None})
        cid = customer_row(self.db, ref, write=True).id
        others = {k: v for k, v in changes.items() if k != "attributes"}
        if rest or others:
            super().update(cid, **others, **({"attributes": rest} if rest else {}))
        sealing.store(cid, secret)
        return self.get(cid)

    @operation(write=False)
    def get(self, ref: Any) -> Customer:
        """A customer (see :meth:`CustomerService.get`), encrypted attributes
        decrypted for a principal with 'pii', masked for others."""
        return self.crm.sealing.shown(super().get(ref))

    @operation(write=False)
    def list(self, **kwargs: Any) -> list[Customer]:
        """The customers (see :meth:`CustomerService.list`), encrypted attributes
        decrypted or masked as :meth:`get` shows them."""
        found = super().list(**kwargs)
        sealing = self.crm.sealing
        return [sealing.shown(c) for c in found] if sealing.encrypted else found


class SealedRecords(RecordsService):
    """``crm.records`` whose card shows the customer as :meth:`SealedCustomers.get` does."""

    def card(self, customer: Any = None, **kwargs: Any) -> dict[str, Any]:
        """The customer card (see :meth:`RecordsService.card`)."""
        card: dict[str, Any] = super().card(customer, **kwargs)
        sealing = self.crm.sealing
        if sealing.encrypted and isinstance(card.get("customer"), Customer):
            with self.crm.transaction(write=False):
                card["customer"] = sealing.shown(card["customer"])
        return card
