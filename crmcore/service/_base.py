"""The CRM object: configuration, plugins, clock, engine and the transaction.

Every public operation is one database transaction. Calls made while a
transaction is open (from a hook, or inside ``with crm.transaction():``) join
it, so a plugin's writes commit or roll back with the operation that caused them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import bindparam, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from crmcore import access, jsonschemas
from crmcore import config as config_mod
from crmcore.access import Principal
from crmcore.clock import Clock, configured_clock
from crmcore.errors import (
    AccessDenied,
    Conflict,
    CRMError,
    NotFound,
    ValidationError,
)
from crmcore.parse import clean_text, parse_int, parse_number
from crmcore.plugins import Plugins, build
from crmcore.schema import customers, staff
from crmcore.storage._driver import Prepared, connection, run
from crmcore.storage.engine import database_error, make_engine
from crmcore.storage.query import DB
from crmcore.storage.scope import catalog_of

if TYPE_CHECKING:
    from crmcore.entities import Customer, Interaction, TimelineEntry

F = TypeVar("F", bound=Callable[..., Any])

# Built once: statement construction costs more than executing a cached one.
_BY_ID = select(customers).where(customers.c.id == bindparam("id"))
_BY_EXT = select(customers).where(customers.c.external_id == bindparam("ext"))
_BY_ID_OR_EXT = select(customers).where(
    (customers.c.id == bindparam("id")) | (customers.c.external_id == bindparam("ext"))
)
_ID_MERGED = Prepared(
    select(customers.c.id, customers.c.merged_into_id).where(customers.c.id == bindparam("id"))
)


def not_found_customer(ref: Any) -> NotFound:
    """The one answer for a customer reference that does not exist *or* that the
    acting principal may not see: the two must be indistinguishable."""
    shown = getattr(ref, "id", ref)
    return NotFound(f"customer {shown!r} not found")


def operation(*, write: bool = True) -> Callable[[F], F]:
    """Run the decorated method in one transaction (joining an open one)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(self: CRMBase, *args: Any, **kwargs: Any) -> Any:
            with self.transaction(write=write, op=fn.__name__):
                return fn(self, *args, **kwargs)

        return cast(F, inner)  # the same signature: wraps() copies the rest

    return wrap


class CRMBase:
    """Shared state and plumbing; the operations live in the mixins."""

    def __init__(
        self,
        config: config_mod.Config,
        *,
        clock: Clock | None = None,
        engine: Engine | None = None,
        plugins: Plugins | None = None,
        extra_plugins: Mapping[str, object] | None = None,
        principal: str | Principal | None = None,
        command: str | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or configured_clock(config.core)
        self.plugins = plugins or build(config, extra=extra_plugins)
        self.engine = engine or make_engine(
            config.database, sqlite_synchronous=config.core["sqlite_synchronous"]
        )
        if principal is None:
            principal = config.core.get("default_principal")
        self._principal_ref: str | Principal = principal or access.SYSTEM
        # a staff key is resolved (its staff row read) once, for this CRM's lifetime
        self._resolved_principal: Principal | None = None
        catalog_of(self.plugins)  # a table declaring an unknown kind fails at start-up
        self.command = command or "api"
        self._local = threading.local()  # each thread has its own open transaction
        self._attribute_schema: dict[str, Any] | None = None

    @property
    def _db(self) -> DB | None:
        return getattr(self._local, "db", None)

    @_db.setter
    def _db(self, value: DB | None) -> None:
        self._local.db = value

    @property
    def _after_commit(self) -> list[Callable[[], None]]:
        if not hasattr(self._local, "after_commit"):
            self._local.after_commit = []
        return self._local.after_commit

    @_after_commit.setter
    def _after_commit(self, value: list[Callable[[], None]]) -> None:
        self._local.after_commit = value

    if TYPE_CHECKING:
        # Operations one mixin calls on another, declared for type checkers only:
        # the mixin that defines each overrides it, and a checker verifies both
        # the calls and that the definitions keep these signatures.
        def normalise_phone(self, text: str) -> str: ...

        def match_customer(
            self,
            *,
            phone: str | None = None,
            email: str | None = None,
            external_id: str | None = None,
        ) -> tuple[Customer, str] | None: ...

        def _listing_filter(self, stage: str | None, owner: Any) -> list[Any]: ...

        def record_interaction(
            self,
            customer: Any,
            kind: str,
            text: str = "",
            *,
            at: dt.datetime | None = None,
            staff: Any = None,
            channel: str | None = None,
            data: Mapping[str, Any] | None = None,
            source: str = "core",
        ) -> Interaction: ...

        def add_timeline_entry(
            self,
            customer: Any,
            kind: str,
            summary: str,
            *,
            at: dt.datetime | None = None,
            data: Mapping[str, Any] | None = None,
            source: str = "core",
        ) -> TimelineEntry: ...

    # -- construction helpers ------------------------------------------------
    @property
    def hook(self) -> Any:
        """The plugin hooks (pluggy's ``pm.hook``): ``crm.hook.crm_NAME(crm=crm, ...)`` calls every
        enabled plugin's implementation."""
        return self.plugins.pm.hook

    def as_(self, principal: str | Principal, *, command: str | None = None) -> Any:
        """The same CRM (engine, plugins, clock) acting as another principal."""
        return self._clone(principal=principal, command=command or self.command)

    def _clone(self, **changes: Any) -> Any:
        return type(self)(
            self.config,
            clock=changes.get("clock", self.clock),
            engine=self.engine,
            plugins=self.plugins,
            principal=changes.get("principal", self._principal_ref),
            command=changes.get("command", self.command),
        )

    def plugin_config(self, name: str) -> dict[str, Any]:
        """The validated ``[plugins.NAME]`` section, defaults filled in."""
        try:
            return self.plugins.configs[name]
        except KeyError:
            raise NotFound(f"plugin {name!r} is not enabled") from None

    def may_see_pii(self) -> bool:
        """Whether the acting principal may see personal data unmasked."""
        principal = self._db.principal if self._db is not None else None
        if principal is None:
            with self.transaction(write=False):
                return self.db.principal.can("pii")
        return principal.can("pii")

    def show_phone(self, value: str | None) -> str | None:
        """A phone number as the acting principal may see it (masked without 'pii')."""
        from crmcore.contacts import mask_phone

        return value if self.may_see_pii() else mask_phone(value)

    def show_email(self, value: str | None) -> str | None:
        """An e-mail address as the acting principal may see it (masked without 'pii')."""
        from crmcore.contacts import mask_email

        return value if self.may_see_pii() else mask_email(value)

    def show_id_number(self, value: str | None) -> str | None:
        """An identity number as the acting principal may see it (masked without 'pii')."""
        from crmcore.contacts import mask_id_number

        return value if self.may_see_pii() else mask_id_number(value)

    def now(self) -> dt.datetime:
        """The current time of the CRM's clock (naive local time); logic never reads the wall
        clock."""
        return self.clock.now()

    # -- the transaction -----------------------------------------------------
    @property
    def db(self) -> DB:
        """The query layer of the open transaction."""
        if self._db is None:
            raise CRMError("no open transaction: use 'with crm.transaction():' or a CRM operation")
        return self._db

    @property
    def principal(self) -> Principal:
        """The principal acting in the open transaction."""
        return self.db.principal

    def _relax_durability(self, conn: Any) -> str | None:
        """SQLite at ``synchronous=FULL``: NORMAL for this connection's next
        commit; the statement that restores FULL afterwards (None: nothing to do)."""
        if conn.dialect.name != "sqlite" or self.config.core["sqlite_synchronous"] != "full":
            return None
        conn.connection.dbapi_connection.execute("PRAGMA synchronous=NORMAL")
        return "PRAGMA synchronous=FULL"

    @contextlib.contextmanager
    def transaction(
        self,
        *,
        write: bool = True,
        command: str | None = None,
        op: str | None = None,
        durable: bool = True,
    ) -> Iterator[DB]:
        """Open (or join) the transaction; commit on success, roll back on any error.

        ``command`` names what the audit trail records as the cause (default:
        the CLI command, else ``api:<operation>``). ``durable=False`` is for
        work that writes only what can be recomputed (the analytics' labels and
        kept figures): its commit is not synced to disk (SQLite
        ``synchronous=NORMAL`` in WAL mode, PostgreSQL ``synchronous_commit =
        off``), so a power cut may lose that run, never the database's
        consistency or any other commit. Joining an open transaction keeps its
        durability.
        """
        if self._db is not None:
            yield self._db
            return
        self._after_commit = []
        try:
            with self.engine.connect() as conn:
                conn.info["crm_write"] = write
                restore = None if durable else self._relax_durability(conn)
                try:
                    with conn.begin():
                        if not durable and conn.dialect.name == "postgresql":
                            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                        principal = self._resolve_principal(conn)
                        self._db = DB(
                            conn,
                            principal,
                            now=self.now(),
                            command=self._command(command, op),
                            catalog=catalog_of(self.plugins),
                        )
                        try:
                            yield self._db
                        finally:
                            self._db = None
                finally:
                    if restore is not None:
                        driver = conn.connection.dbapi_connection
                        assert driver is not None  # still checked out: the driver is there
                        driver.execute(restore)
        except sa_exc.OperationalError as e:
            raise database_error(e.orig) from None
        except sa_exc.IntegrityError as e:
            raise Conflict(f"conflicts with existing data: {str(e.orig).splitlines()[0]}") from None
        except sa_exc.DataError as e:
            raise ValidationError(
                f"value rejected by the database: {str(e.orig).splitlines()[0]}"
            ) from None
        except Exception as e:  # driver-level SQL (imports, analytics) raises the driver's
            if isinstance(e, self.engine.dialect.loaded_dbapi.OperationalError):
                raise database_error(e) from None
            raise
        callbacks, self._after_commit = self._after_commit, []
        for cb in callbacks:
            cb()

    def _command(self, command: str | None, op: str | None) -> str:
        if command:
            return command
        return self.command if self.command != "api" or not op else f"api:{op}"

    def _resolve_principal(self, conn: Any) -> Principal:
        """The acting principal. A staff key's row is read at the CRM's first
        operation and kept for its lifetime, so the principal costs nothing
        per operation: a change of that member (a departure, new roles) applies
        to the CRMs made after it (``as_`` makes one per request or command)."""
        ref = self._principal_ref
        if isinstance(ref, Principal):
            return ref
        if self._resolved_principal is not None:
            return self._resolved_principal
        row = conn.execute(select(staff).where(staff.c.key == ref)).first()
        if row is None:
            raise AccessDenied(
                f"unknown staff member {ref!r}: add them with 'crm staff add' or use --as"
            )
        self._resolved_principal = access.resolve(row, self.config.core["roles"])
        return self._resolved_principal

    # -- references ------------------------------------------------------------
    def _customer_row(self, ref: Any, *, write: bool = False) -> Any:
        """Find a customer by id, external id or entity, as the principal may see it.

        A customer the principal may not see answers exactly like one that does
        not exist (:class:`NotFound`, "customer REF not found"), so a reference
        never confirms that someone else's customer exists. The ``write``
        permission is checked first, before the lookup, for the same reason."""
        principal = self.db.principal
        if not principal.active:  # refused as departed, before any lookup
            raise AccessDenied(f"{principal.key} has departed and may not see or change customers")
        if write:
            self.db.require_write()
        ref_id = getattr(ref, "id", None)
        if ref_id is not None or (isinstance(ref, int) and not isinstance(ref, bool)):
            rows = connection(self.db).execute(_BY_ID, {"id": ref_id if ref_id is not None else ref}).all()
        elif isinstance(ref, str) and ref.strip():
            text = ref.strip()
            if text.isascii() and text.isdigit() and len(text) < 18:  # not '²' or '١'
                rows = connection(self.db).execute(_BY_ID_OR_EXT, {"id": int(text), "ext": text}).all()
            else:
                rows = connection(self.db).execute(_BY_EXT, {"ext": text}).all()
        else:
            raise NotFound(f"customer {ref!r}: give an id or an external id")
        if not principal.unrestricted:
            rows = [r for r in rows if self.db.can_see(r.merged_into_id or r.id)]
        if not rows:
            raise not_found_customer(ref)
        row = rows[0] if len(rows) == 1 else next(r for r in rows if str(r.id) == str(ref).strip())
        while row.merged_into_id is not None:
            target = connection(self.db).execute(_BY_ID, {"id": row.merged_into_id}).first()
            if target is None or not self.db.can_see(target.id):
                raise not_found_customer(ref)
            row = target
        return row

    def _customer_id(self, ref: Any, *, write: bool = False) -> int:
        """:meth:`_customer_row`'s id; an unrestricted principal's lookup by id (an
        int or an entity) reads only the id and the merge pointer, on the driver."""
        db = self.db
        if db.principal.unrestricted:
            ref_id = getattr(ref, "id", None)
            if ref_id is None and isinstance(ref, int) and not isinstance(ref, bool):
                ref_id = ref
            if ref_id is not None:
                if write:
                    db.require_write()
                row = run(db, _ID_MERGED, {"id": ref_id}).fetchone()
                if row is None:
                    raise not_found_customer(ref)
                if row[1] is not None:
                    return self._customer_id(row[1], write=write)
                return row[0]
        return self._customer_row(ref, write=write).id

    def _staff_row(self, ref: Any) -> Any:
        if ref is None:
            return None
        ref_id = getattr(ref, "id", None)
        if ref_id is not None:
            cond = staff.c.id == ref_id
        elif isinstance(ref, int):
            cond = staff.c.id == ref
        else:
            cond = staff.c.key == str(ref)
        row = connection(self.db).execute(select(staff).where(cond)).first()
        if row is None:
            raise NotFound(f"staff member {ref!r} not found")
        return row

    def _staff_id(self, ref: Any) -> int | None:
        row = self._staff_row(ref)
        return None if row is None else row.id

    # -- attribute schema --------------------------------------------------------
    def attribute_schema(self) -> dict[str, Any]:
        """The merged JSON Schema of all enabled plugins' customer attributes."""
        if self._attribute_schema is None:
            declared = self.plugins.declared.get("attribute", {})
            self._attribute_schema = {
                "type": "object",
                "properties": {name: a.schema for name, a in declared.items()},
            }
        return self._attribute_schema

    def validate_attributes(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Check customer attribute values against the declared attributes' JSON Schemas and return
        them; an undeclared name or an invalid value is a :class:`ValidationError` naming it."""
        declared = self.plugins.declared.get("attribute", {})
        for key in values:
            if key not in declared:
                names = ", ".join(sorted(declared)) or "(none: no enabled plugin declares any)"
                raise ValidationError(f"attribute {key!r} is not declared; declared: {names}")
        for key, value in values.items():
            _check_attribute_text(value, f"attribute {key}")
        try:
            return jsonschemas.validate(
                dict(values), self.attribute_schema(), where="attributes", defaults=False
            )
        except ValueError as e:
            raise ValidationError(str(e)) from None

    def coerce_attribute(self, name: str, text: str) -> Any:
        """Turn ``--attr name=text`` into the declared type."""
        declared = self.plugins.declared.get("attribute", {})
        if name not in declared:
            names = ", ".join(sorted(declared)) or "(none)"
            raise ValidationError(f"attribute {name!r} is not declared; declared: {names}")
        kind = declared[name].schema.get("type")
        field = f"attribute {name}"
        if kind == "integer":
            return parse_int(text, field=field)
        if kind == "number":
            return parse_number(text, field=field)
        try:
            if kind == "boolean":
                if text.lower() in {"true", "yes", "1"}:
                    return True
                if text.lower() in {"false", "no", "0"}:
                    return False
                raise ValueError
        except ValueError:
            raise ValidationError(f"attribute {name}: {text!r} is not a valid {kind}") from None
        if kind in ("array", "object"):
            import json

            try:
                return json.loads(text, parse_constant=_no_json_constant)
            except ValueError:  # not JSON, or NaN/Infinity
                raise ValidationError(f"attribute {name}: {text!r} is not JSON") from None
        return clean_text(text, field=field, multiline=True)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after the open transaction commits (never if it rolls back)."""
        self._after_commit.append(callback)


def _check_attribute_text(value: Any, field: str) -> None:
    """Every text inside an attribute value follows the shared text rule
    (length, no control characters); numbers must be finite."""
    if isinstance(value, str):
        clean_text(value, field=field, multiline=True, required=False)
    elif isinstance(value, float):
        parse_number(value, field=field)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _check_attribute_text(k, field)
            _check_attribute_text(v, f"{field}.{k}")
    elif isinstance(value, list | tuple):
        for v in value:
            _check_attribute_text(v, field)


def _no_json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")
