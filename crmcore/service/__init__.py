"""The CRM facade: the unit of work, and one service object per area.

``CRM`` owns what every operation shares: the configuration, the plugins,
the clock, the engine and the transaction (with its query layer ``crm.db``
and acting principal). The operations live in service objects it creates,
one per area (see :mod:`crmcore.services`): ``crm.customers``,
``crm.records``, ``crm.tickets``, ``crm.messages``, ``crm.jobs``,
``crm.staff`` and ``crm.admin``. Every service operation is one database
transaction; calls made while a transaction is open (from a hook, or inside
``with crm.transaction():``) join it, so a plugin's writes commit or roll
back with the operation that caused them.

The flat names of the operations (``add_customer`` on the CRM itself) are kept for one
release as aliases that warn (:mod:`crmcore.service.aliases`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.engine import Engine

from crmcore import access, jsonschemas
from crmcore import config as config_mod
from crmcore.access import Principal
from crmcore.clock import Clock, FixedClock, configured_clock
from crmcore.db import DB, database_error, make_engine
from crmcore.errors import AccessDenied, Conflict, CRMError, NotFound, ValidationError
from crmcore.parse import clean_text, parse_number
from crmcore.plugins import Plugins, build
from crmcore.schema import staff
from crmcore.scope import catalog_of
from crmcore.service import aliases
from crmcore.services.admin import AdminService
from crmcore.services.base import Service
from crmcore.services.jobs import JobService
from crmcore.services.messages import MessageService
from crmcore.services.monitoring import LifecycleService, ProtectService, RecurringTickets
from crmcore.services.sealed import SealedCustomers, SealedRecords, Sealing
from crmcore.services.staff import StaffService


class CRM:
    """The CRM: customers, relationships, lifecycle, records, tickets, outbox, jobs.

    Build one with :meth:`open` (reads crm.toml) or directly from a
    :class:`~crmcore.config.Config`; its operations are on its services
    (``crm.customers.add(...)``, ``crm.tickets.open(...)``, ``crm.records.timeline(...)``).
    """

    #: the service of each area, by the attribute that holds it
    SERVICES: ClassVar[Mapping[str, type[Service]]] = {
        "customers": SealedCustomers,
        "records": SealedRecords,
        "tickets": RecurringTickets,
        "messages": MessageService,
        "jobs": JobService,
        "staff": StaffService,
        "admin": AdminService,
        "lifecycle": LifecycleService,
        "protect": ProtectService,
    }

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
        self.sealing = Sealing(self)  # a bad [crm.protect] designation fails at start-up
        self.customers = SealedCustomers(self)
        self.records = SealedRecords(self)
        self.tickets = RecurringTickets(self)
        self.messages = MessageService(self)
        self.jobs = JobService(self)
        self.staff = StaffService(self)
        self.admin = AdminService(self)
        self.lifecycle = LifecycleService(self)
        self.protect = ProtectService(self)

    @classmethod
    def open(
        cls,
        config_path: str | None = None,
        *,
        database: str | None = None,
        principal: Any = None,
        **kwargs: Any,
    ) -> CRM:
        """A CRM from a crm.toml (``config_path``, else ``./crm.toml`` or ``CRM_CONFIG``), with
        ``database`` and ``principal`` as the command line's ``--db`` and ``--as``."""
        cfg = config_mod.load(config_path, database=database)
        return cls(cfg, principal=principal, **kwargs)

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

    # -- construction helpers ------------------------------------------------
    @property
    def hook(self) -> Any:
        """The plugin hooks (pluggy's ``pm.hook``): ``crm.hook.crm_NAME(crm=crm, ...)`` calls every
        enabled plugin's implementation."""
        return self.plugins.pm.hook

    def as_(self, principal: str | Principal, *, command: str | None = None) -> CRM:
        """The same CRM (engine, plugins, clock) acting as another principal."""
        return self._clone(principal=principal, command=command or self.command)

    def at(self, when: dt.datetime) -> CRM:
        """The same CRM with a clock fixed at ``when`` (what a job run as of ``when`` sees)."""
        return self._clone(clock=FixedClock(when))

    def _clone(self, **changes: Any) -> CRM:
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
                        principal = self.resolve_principal(conn)
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

    @property
    def principal_ref(self) -> str | Principal:
        """Whom this CRM acts as, as given: a staff key or a :class:`~crmcore.access.Principal`."""
        return self._principal_ref

    @property
    def in_transaction(self) -> bool:
        """Whether this thread has a transaction of this CRM open."""
        return self._db is not None

    def acting(self) -> Principal:
        """The acting principal outside a transaction: resolved once, in a read
        of its own (then kept, like :meth:`resolve_principal`)."""
        ref = self._principal_ref
        if isinstance(ref, Principal):
            return ref
        if self._resolved_principal is None:
            with self.transaction(write=False) as db:
                return db.principal
        return self._resolved_principal

    def resolve_principal(self, conn: Any) -> Principal:
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


aliases.install(CRM)

__all__ = ["CRM"]
