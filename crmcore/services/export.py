"""The rows of a customer export (the CLI writes the file, :mod:`crmcore.cli.export`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from crmcore.errors import AccessDenied
from crmcore.schema import customers, live_customers
from crmcore.services.base import Service

# the columns of an export, in order
EXPORT_COLUMNS = ("id", "external_id", "name", "phone", "email", "stage", "owner_id")


class ExportOps(Service):
    """``crm.customers``' export rows."""

    def check_export(self) -> bool:
        """Refuse, in the open transaction, a principal without 'export'; whether
        the export may carry personal data unmasked (the principal has 'pii')."""
        principal = self.db.principal
        if not principal.can("export"):
            raise AccessDenied(f"{principal.key} may not export customer data: needs 'export'")
        return principal.can("pii")

    def export_rows(self) -> Iterator[dict[str, Any]]:
        """The live customers the principal may see, by id, as export rows
        (:data:`EXPORT_COLUMNS`; phones and e-mails masked without 'pii'), read
        in the open transaction in batches. Needs 'export' (:meth:`check_export`);
        the caller writes them and audits the export (``crm customer export``)."""
        from crmcore.masking import Masker

        self.check_export()
        stmt = select(*(live_customers.c[c] for c in EXPORT_COLUMNS)).order_by(live_customers.c.id)
        masker = Masker.for_crm(self.crm)
        for row in self.db.execute(stmt.execution_options(yield_per=5000)):
            yield dict(masker.row(customers.name, row._mapping))
