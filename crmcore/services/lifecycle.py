"""The lifecycle (stage changes and their history) and the classification labels of a customer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from crmcore.entities import StageChange
from crmcore.errors import TransitionError, ValidationError
from crmcore.parse import clean_text
from crmcore.schema import customer_labels, customers, stage_changes
from crmcore.services.base import Service, operation
from crmcore.services.refs import customer_row
from crmcore.storage._driver import connection


class LifecycleOps(Service):
    """``crm.customers``' stage and label operations."""

    # -- lifecycle -------------------------------------------------------------------
    @operation()
    def change_stage(self, ref: Any, stage: str, *, reason: str = "") -> StageChange:
        """Move a customer to another lifecycle stage; forbidden moves are refused."""
        row = customer_row(self.db, ref, write=True)
        lc = self.config.core["lifecycle"]
        if stage not in lc["stages"]:
            raise ValidationError(f"stage {stage!r} is not configured; stages: {lc['stages']}")
        allowed = lc["transitions"].get(row.stage, [])
        if stage not in allowed:
            raise TransitionError(
                f"customer {row.id}: cannot move from {row.stage!r} to {stage!r}; "
                f"allowed from {row.stage!r}: {allowed or 'none'}"
            )
        now = self.now()
        reason = (
            clean_text(reason, field="reason", max_len=2000, multiline=True, required=False) or ""
        )
        change = StageChange(
            customer_id=row.id,
            from_stage=row.stage,
            to_stage=stage,
            reason=reason,
            at=now,
            by_staff_id=self.db.principal.staff_id,
        )
        self.db.execute(
            update(customers).where(customers.c.id == row.id).values(stage=stage, updated_at=now)
        )
        self.db.execute(
            stage_changes.insert().values(
                customer_id=row.id,
                from_stage=row.stage,
                to_stage=stage,
                reason=reason,
                at=now,
                by_staff_id=self.db.principal.staff_id,
            )
        )
        self.hook.crm_stage_changed(crm=self.crm, customer=self.crm.customers.get(row.id), change=change)
        return change

    @operation(write=False)
    def stage_history(self, ref: Any) -> list[StageChange]:
        """The customer's lifecycle moves, oldest first, each with its reason and time."""
        row = customer_row(self.db, ref)
        rows = self.db.execute(
            select(stage_changes)
            .where(stage_changes.c.customer_id == row.id)
            .order_by(stage_changes.c.id)
        )
        return [
            StageChange(
                customer_id=r.customer_id,
                from_stage=r.from_stage,
                to_stage=r.to_stage,
                reason=r.reason,
                at=r.at,
                by_staff_id=r.by_staff_id,
            )
            for r in rows
        ]

    # -- labels (segments, tiers) -------------------------------------------------------
    @operation()
    def set_label(self, ref: Any, name: str, value: str | None, *, source: str = "core") -> None:
        """Set (or with None, clear) a classification label such as ``abc`` = ``A``."""
        cid = customer_row(self.db, ref, write=True).id
        self.db.execute(
            customer_labels.delete().where(
                customer_labels.c.customer_id == cid, customer_labels.c.name == name
            )
        )
        if value is not None:
            self.db.execute(
                customer_labels.insert().values(
                    customer_id=cid, name=name, value=str(value), source=source, as_of=self.now()
                )
            )

    @operation(write=False)
    def labels(self, ref: Any) -> dict[str, str]:
        """The customer's labels (``abc``, ``rfm``, ``retail.tier``, ...) as name -> value."""
        cid = customer_row(self.db, ref).id
        rows = connection(self.db).execute(
            select(customer_labels.c.name, customer_labels.c.value).where(
                customer_labels.c.customer_id == cid
            )
        )
        return {r.name: r.value for r in rows}
