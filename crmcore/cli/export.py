"""Writing the customer export file (``crm customer export``): CSV or JSON lines."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore.errors import ValidationError
from crmcore.files import check_target, private_output
from crmcore.services.export import EXPORT_COLUMNS

if TYPE_CHECKING:
    from crmcore.service import CRM

EXPORT_FORMATS = ("csv", "jsonl")


def export_customers(crm: CRM, path: str, *, fmt: str = "csv") -> dict[str, Any]:
    """Write the customers the principal may see to ``path`` (CSV or JSON lines).

    Needs the 'export' permission; phones and e-mails are masked unless the
    principal also has 'pii'. The export is audited twice: its intent (who,
    which format, where, with or without personal data) is committed before
    the first byte is written, and its completion (how many rows) with the
    reading. The file is written privately (mode 0600) under a temporary name
    and renamed when complete: an interrupted export leaves no file, and a
    file of personal data never exists without its audit row.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValidationError(f"export format {fmt!r}; expected csv or jsonl")
    target = Path(path)
    check_target(target, "export")
    command = f"customer export {fmt}"
    where = str(target.absolute())
    with crm.transaction(write=True, command=command):
        pii = crm.customers.check_export()
        crm.db.audit(
            "export",
            None,
            "export_started",
            None,
            {"path": where, "format": fmt, "personal_data": pii},
            customer_id=None,
        )
    cols = list(EXPORT_COLUMNS)
    n = 0
    renamed = False
    try:
        with crm.transaction(write=True, command=command):
            pii = crm.customers.check_export()
            with private_output(target, "export") as temp:
                with temp.open("w", encoding="utf-8", newline="") as f:
                    writer = csv.writer(f) if fmt == "csv" else None
                    if writer:
                        writer.writerow(cols)
                    for values in crm.customers.export_rows():
                        if writer:
                            writer.writerow([values[c] for c in cols])
                        else:
                            f.write(json.dumps(values, ensure_ascii=False) + "\n")
                        n += 1
                crm.db.audit(
                    "export",
                    None,
                    "export",
                    None,
                    {"path": where, "rows": n, "format": fmt, "personal_data": pii},
                    customer_id=None,
                )
            renamed = True
    except BaseException:
        if renamed:  # the completion was not committed: the file goes too
            target.unlink(missing_ok=True)
        raise
    return {"path": str(target), "rows": n, "format": fmt, "personal_data": pii}
