"""``crm import customers``: stream a file of customers into ``customers``.

Columns ``external_id, name, phone, email`` plus any declared attribute. A row
whose external id, phone or e-mail (normalised) already belongs to a customer
(stored, or created earlier in the file) is *matched*, as ``add_customer``
would: counted, not created again. New customers are written per batch with
one ``INSERT ... SELECT`` from a staging table, their creation stage rows set-
based, one audit row, and one ``crm_customer_created_batch`` call per batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from jsonschema import Draft202012Validator
from sqlalchemy import select

from crmcore import contacts, jsonschemas
from crmcore.entities import Customer, CustomerBatch
from crmcore.errors import ValidationError
from crmcore.importer import _common as c
from crmcore.importer._read import Reader
from crmcore.present import coerce_attribute
from crmcore.schema import customers
from crmcore.storage._driver import connection, dialect_name

BASE = ("external_id", "name", "phone", "email")
STAGE = "crm_import_cu"
STAGE_COLS = ("line", "ext", "name", "phone", "email", "attrs")


def _create_stage(crm: Any) -> None:
    cols = "ext TEXT, name TEXT NOT NULL, phone TEXT, email TEXT, attrs TEXT NOT NULL"
    if dialect_name(crm.db) == "sqlite":
        c.driver(crm).execute(f"DROP TABLE IF EXISTS temp.{STAGE}")
        c.driver(crm).execute(f"CREATE TEMP TABLE {STAGE} (line INTEGER PRIMARY KEY, {cols})")
    else:
        c.query(crm, f"DROP TABLE IF EXISTS pg_temp.{STAGE}")
        c.query(crm, f"CREATE TEMP TABLE {STAGE} (line BIGINT PRIMARY KEY, {cols}) ON COMMIT DROP")
        c.query(crm, "LOCK TABLE customers IN EXCLUSIVE MODE")  # contiguous id ranges per batch


def import_customers(
    crm: Any,
    path: str,
    *,
    fmt: str | None = None,
    skip_invalid: bool = False,
    rejects: str | None = None,
    replace_rejects: bool = False,
    batch_size: int = c.DEFAULT_BATCH,
    progress: Callable[[int], None] | None = None,
    stream: Any = None,
) -> dict[str, Any]:
    """Import customers from ``path`` (CSV or JSON lines); return the summary
    (``imported``, ``matched``, ``rejected``, ``errors``...). All-or-nothing
    unless ``skip_invalid``; refused rows go to ``rejects`` as for
    :func:`crmcore.importer.import_transactions`."""
    if batch_size < 1:
        raise ValidationError("batch size must be at least 1")
    declared = crm.plugins.declared.get("attribute", {})
    reader = Reader(path, fmt, stream=stream)
    summary = c.Summary("customers", path)
    try:
        reader.read_header(set(BASE) | set(declared), ("name",), scalar=BASE)
        sealed = [n for n in reader.columns if n in crm.protect.encrypted_attributes()]
        if sealed:  # the bulk path writes attributes as given: never a plain secret
            raise ValidationError(
                f"{path}: column {sealed[0]!r} is an encrypted attribute; "
                "set it with `crm customer update`, not the import"
            )
        with crm.transaction(command=f"import customers {path}"):
            c.require_import(crm)
            with c.rejects_file(
                crm, rejects, path, reader.fmt, reader.columns, replace=replace_rejects
            ) as out:
                _CuImport(crm, reader, summary, out, skip_invalid, batch_size, progress).run()
            if summary.rejected and not skip_invalid:
                summary.imported = 0
                summary.first_id = summary.last_id = None
                raise c.ImportFailed(summary.as_dict())
    finally:
        reader.close()
    return summary.as_dict()


class _CuImport(c.BatchImport):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        crm = self.crm
        self.cc = crm.config.core["country_code"]
        self.validate_hook = c.has_impl(crm, "crm_validate_customer")
        self.batch_hook = c.has_impl(crm, "crm_customer_created_batch")
        self.single = c.singular_caller(crm, "crm_customer_created", "crm_customer_created_batch")
        self.validator = Draft202012Validator(crm.attribute_schema())
        lc = crm.config.core["lifecycle"]
        self.stage = lc["initial"]
        self.now = crm.now()
        self.staff_id = crm.db.principal.staff_id

    def reject(self, line: int, message: str, fields: list[Any]) -> None:
        self.summary.error(line, message)
        self.rejects.write(line, message, fields)

    def _row(
        self, f: list[Any], cols: list[str], attr_cols: list[tuple[int, str]]
    ) -> tuple[Any, ...]:
        get = dict(zip(cols, f, strict=True)).get
        ext = c.clean(get("external_id"), "external_id", 128)
        name = c.clean(get("name"), "name", 300, required=True)
        phone = get("phone")
        phone = contacts.normalise_phone(phone, self.cc) if phone and phone.strip() else None
        email = get("email")
        email = contacts.normalise_email(email) if email and email.strip() else None
        attrs: dict[str, Any] = {}
        for i, name_ in attr_cols:
            text = f[i]
            if text is not None and text.strip():
                attrs[name_] = coerce_attribute(self.crm, name_, text.strip())
        if attrs:
            errors = sorted(self.validator.iter_errors(attrs), key=lambda e: list(e.absolute_path))
            if errors:
                raise ValidationError(
                    f"attributes: {jsonschemas.key_path(errors[0])}: "
                    f"{jsonschemas.describe(errors[0])}"
                )
        return ext, name, phone, email, attrs

    def run(self) -> None:
        cols = self.reader.columns
        attr_cols = [(i, n) for i, n in enumerate(cols) if n not in BASE]
        summary = self.summary
        _create_stage(self.crm)
        batch: list[tuple[Any, ...]] = []
        raw: dict[int, list[Any]] = {}
        keys: dict[tuple[str, str], int] = {}  # (kind, value) -> line in this batch
        for line, f, err in self.reader.rows():
            summary.rows += 1
            if err is not None:
                self.reject(line, err, f)
                continue
            try:
                ext, name, phone, email, attrs = self._row(f, cols, attr_cols)
            except ValidationError as e:
                self.reject(line, str(e), f)
                continue
            mine = [
                (k, v) for k, v in (("external_id", ext), ("phone", phone), ("email", email)) if v
            ]
            if any(k in keys for k in mine):
                summary.matched += 1  # the same customer as an earlier row of this batch
                continue
            for k in mine:
                keys[k] = line
            batch.append((line, ext, name, phone, email, json.dumps(attrs, ensure_ascii=False)))
            raw[line] = f
            if len(batch) >= self.batch_size:
                self.flush(batch, raw)
                batch, raw, keys = [], {}, {}
        if batch:
            self.flush(batch, raw)
        if self.dialect == "sqlite":
            c.driver(self.crm).execute(f"DROP TABLE IF EXISTS temp.{STAGE}")

    def flush(self, batch: list[tuple[Any, ...]], raw: dict[int, list[Any]]) -> None:
        crm, summary = self.crm, self.summary
        summary.batches += 1
        if self.progress is not None:
            self.progress(self.reader.bytes_read)
        if self.dialect == "sqlite":
            c.driver(crm).execute(f"DELETE FROM {STAGE}")
        else:
            c.query(crm, f"TRUNCATE {STAGE}")
        c.bulk_load(crm, STAGE, STAGE_COLS, batch)
        if self.dialect != "sqlite":
            c.query(crm, f"ANALYZE {STAGE}")
        live = "k.merged_into_id IS NULL"
        matched = c.query(
            crm,
            f"""
            SELECT s.line, 1 FROM {STAGE} s CROSS JOIN customers k WHERE k.external_id = s.ext AND {live}
            UNION ALL
            SELECT s.line, 2 FROM {STAGE} s CROSS JOIN customers k WHERE k.phone = s.phone AND {live}
            UNION ALL
            SELECT s.line, 2 FROM {STAGE} s CROSS JOIN contact_points p
              WHERE p.kind = 'phone' AND p.value = s.phone
            UNION ALL
            SELECT s.line, 3 FROM {STAGE} s CROSS JOIN customers k WHERE k.email = s.email AND {live}
            UNION ALL
            SELECT s.line, 3 FROM {STAGE} s CROSS JOIN contact_points p
              WHERE p.kind = 'email' AND p.value = s.email""",
        )
        found = sorted({r[0] for r in matched})
        summary.matched += len(found)
        bad = list(found)
        if self.validate_hook:
            bad += self._validate(set(found), batch, raw)
        if summary.rejected and not self.skip_invalid:
            return
        c.drop_lines(crm, STAGE, bad)
        pg = self.dialect != "sqlite"
        now = self.now if pg else c.iso(self.now)
        true = "TRUE" if pg else "1"
        attrs = "CAST(s.attrs AS JSON)" if pg else "s.attrs"
        insert = f"""
            INSERT INTO customers (name, external_id, kind, phone, email, consent_sms, consent_email,
                                   owner_id, stage, attributes, created_at, updated_at)
            SELECT s.name, s.ext, 'person', s.phone, s.email, {true}, {true}, ?, ?, {attrs}, ?, ?
            FROM {STAGE} s ORDER BY s.line"""
        params = (self.staff_id, self.stage, now, now)
        if not pg:
            conn = c.driver(crm)
            before = conn.execute("SELECT COALESCE(MAX(id), 0) FROM customers").fetchone()[0]
            n = conn.execute(insert, params).rowcount
            first, last = before + 1, before + n
        else:
            first, last, n = c.query(
                crm,
                f"WITH ins AS ({insert} RETURNING id) SELECT MIN(id), MAX(id), COUNT(*) FROM ins",
                params,
            )[0]
        if not n:
            return
        summary.imported += n
        summary.first_id = first if summary.first_id is None else summary.first_id
        summary.last_id = last
        c.query(
            crm,
            """
            INSERT INTO stage_changes (customer_id, from_stage, to_stage, reason, at, by_staff_id)
            SELECT id, NULL, stage, 'imported', ?, ? FROM customers WHERE id BETWEEN ? AND ?""",
            (now, self.staff_id, first, last),
        )
        crm.db.audit(
            "customers",
            None,
            "import",
            None,
            {"rows": n, "first_id": first, "last_id": last, "file": summary.path},
            customer_id=None,
        )
        if self.batch_hook:
            crm.hook.crm_customer_created_batch(
                crm=crm, batch=CustomerBatch(first_id=first, last_id=last, count=n)
            )
        if self.single is not None:
            from crmcore.services import rows as make

            for r in connection(crm.db).execute(
                select(customers)
                .where(customers.c.id.between(first, last))
                .order_by(customers.c.id)
            ).all():
                self.single(crm=crm, customer=make.customer(r))

    def _validate(
        self, skip: set[int], batch: list[tuple[Any, ...]], raw: dict[int, list[Any]]
    ) -> list[int]:
        """Plugins' ``crm_validate_customer`` per new customer (only when implemented)."""
        bad: list[int] = []
        for line, ext, name, phone, email, attrs in batch:
            if line in skip:
                continue
            draft = Customer(
                id=0,
                name=name,
                external_id=ext,
                phone=phone,
                email=email,
                owner_id=self.staff_id,
                stage=self.stage,
                attributes=json.loads(attrs),
                created_at=self.now,
                updated_at=self.now,
            )
            try:
                self.crm.hook.crm_validate_customer(crm=self.crm, customer=draft, before=None)
            except ValidationError as e:
                self.reject(line, str(e), raw[line])
                bad.append(line)
        return bad
