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
from crmcore.masking import mask
from crmcore.protect import crypto
from crmcore.schema import customers
from crmcore.service._base import operation
from crmcore.service._customers import CustomersMixin
from crmcore.service._records import RecordsMixin

REENCRYPT_BATCH = 500


class ProtectMixin(RecordsMixin, CustomersMixin):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._encrypted = crypto.designated(self)  # a bad designation fails at start-up
        self._keys: crypto.Keyring | None = None

    def encrypted_attributes(self) -> tuple[str, ...]:
        """The attributes stored encrypted (``[crm.protect] encrypted``)."""
        return self._encrypted

    def _keyring(self) -> crypto.Keyring:
        if self._keys is None:
            self._keys = crypto.keyring(self.config)
        return self._keys

    def _field(self, name: str) -> str:
        return f"{crypto.FIELD_PREFIX}{name}"

    def _split(self, values: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the values of encrypted attributes, the others)."""
        secret = {k: v for k, v in (values or {}).items() if k in self._encrypted}
        rest = {k: v for k, v in (values or {}).items() if k not in self._encrypted}
        return secret, rest

    def _store_secret(self, cid: int, secret: Mapping[str, Any]) -> None:
        """Write the encrypted values (None removes one) into the customer's attributes."""
        row = self.db.conn.execute(
            select(customers.c.attributes).where(customers.c.id == cid)
        ).one()
        merged = dict(row.attributes or {})
        keys = self._keyring()
        for name, value in secret.items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = keys.seal(self._field(name), value)
        self.db.execute(
            update(customers)
            .where(customers.c.id == cid)
            .values(attributes=merged, updated_at=self.now())
        )

    def _shown(self, customer: Customer) -> Customer:
        """The customer with its encrypted attributes decrypted (principal with
        'pii') or masked (any other)."""
        sealed = [k for k in self._encrypted if crypto.is_sealed(customer.attributes.get(k))]
        if not sealed:
            return customer
        values = dict(customer.attributes)
        if self.may_see_pii():
            keys = self._keyring()
            for name in sealed:
                values[name] = keys.open(self._field(name), values[name])
        else:
            for name in sealed:
                values[name] = mask(values[name])
        return attrs.evolve(customer, attributes=values)

    @operation()
    def add_customer(self, name: str, **kwargs: Any) -> Customer:
        """Create a customer (see :meth:`CustomersMixin.add_customer`); the values of
        encrypted attributes are stored encrypted. Hooks see the customer without
        them: their plain values exist only in the caller's hands."""
        secret, rest = self._split(kwargs.get("attributes"))
        if not secret:
            return self._shown(super().add_customer(name, **kwargs))
        self.validate_attributes({k: v for k, v in secret.items() if v is not None})
        p, e = self._norm_contacts(kwargs.get("phone"), kwargs.get("email"))
        if self.match_customer(phone=p, email=e, external_id=kwargs.get("external_id")):
            return self._shown(super().add_customer(name, **kwargs))  # the existing one
        made = super().add_customer(name, **{**kwargs, "attributes": rest})
        self._store_secret(made.id, secret)
        return self.get_customer(made.id)

    @operation()
    def update_customer(self, ref: Any, **changes: Any) -> Customer:
        """Change a customer (see :meth:`CustomersMixin.update_customer`); encrypted
        attributes are written encrypted (hooks see the rest of the change)."""
        if "attributes" not in changes:
            return self._shown(super().update_customer(ref, **changes))
        secret, rest = self._split(changes["attributes"])
        if not secret:
            return self._shown(super().update_customer(ref, **changes))
        self.validate_attributes({k: v for k, v in secret.items() if v is not None})
        cid = self._customer_row(ref, write=True).id
        others = {k: v for k, v in changes.items() if k != "attributes"}
        if rest or others:
            super().update_customer(cid, **others, **({"attributes": rest} if rest else {}))
        self._store_secret(cid, secret)
        return self.get_customer(cid)

    @operation(write=False)
    def get_customer(self, ref: Any) -> Customer:
        """A customer (see :meth:`CustomersMixin.get_customer`), encrypted attributes
        decrypted for a principal with 'pii', masked for others."""
        return self._shown(super().get_customer(ref))

    @operation(write=False)
    def list_customers(self, **kwargs: Any) -> list[Customer]:
        """The customers (see :meth:`CustomersMixin.list_customers`), encrypted
        attributes decrypted or masked as :meth:`get_customer` shows them."""
        found = super().list_customers(**kwargs)
        return [self._shown(c) for c in found] if self._encrypted else found

    def card(self, customer: Any = None, **kwargs: Any) -> dict[str, Any]:
        """The customer card (see :meth:`RecordsMixin.card`) with the customer shown
        as :meth:`get_customer` shows it."""
        card: dict[str, Any] = super().card(customer, **kwargs)
        if self._encrypted and isinstance(card.get("customer"), Customer):
            with self.transaction(write=False):
                card["customer"] = self._shown(card["customer"])
        return card

    # -- key rotation --------------------------------------------------------------
    def _sealed_batches(self) -> Iterator[Sequence[Any]]:
        """The customers' (id, attributes) in id order, a batch at a time."""
        last = 0
        while True:
            with self.transaction(write=False):
                rows = self.db.conn.execute(
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
        from crmcore.errors import AccessDenied

        with self.transaction(write=False):
            p = self.db.principal
            if not (p.unrestricted and p.can("pii") and p.can("admin")):
                raise AccessDenied(
                    f"{p.key} may not re-encrypt personal data: needs 'admin' and 'pii' "
                    "over every customer"
                )
        keys = self._keyring()
        changed = 0
        for rows in self._sealed_batches():
            updates = []
            for row in rows:
                values = dict(row.attributes or {})
                stale = [
                    k
                    for k in self._encrypted
                    if crypto.is_sealed(values.get(k))
                    and crypto.key_id_of(values[k]) != keys.current
                ]
                for name in stale:
                    field = self._field(name)
                    values[name] = keys.seal(field, keys.open(field, values[name]))
                if stale:
                    updates.append({"cid": row.id, "attributes": values})
            if updates:
                with self.transaction(command="protect rotate-key"):
                    self.db.conn.execute(
                        update(customers)
                        .where(customers.c.id == bindparam("cid"))
                        .values(attributes=bindparam("attributes")),
                        updates,
                    )
                    self.db.audit(
                        "customers",
                        None,
                        "rotate_key",
                        None,
                        {"customers": len(updates), "key": keys.current},
                        customer_id=None,
                    )
                changed += len(updates)
        return {"key": keys.current, "customers": changed}
