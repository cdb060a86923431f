"""What every service shares: the facade it works in, and one transaction per operation."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from crmcore.config import Config
    from crmcore.db import DB
    from crmcore.plugins import Plugins
    from crmcore.service import CRM

F = TypeVar("F", bound=Callable[..., Any])


def operation(*, write: bool = True) -> Callable[[F], F]:
    """Run the decorated service method in one transaction (joining an open one).

    The audit trail names an operation outside the CLI ``api:AREA.METHOD``
    (``api:customers.add``)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(self: Service, *args: Any, **kwargs: Any) -> Any:
            with self.crm.transaction(write=write, op=f"{self.area}.{fn.__name__}"):
                return fn(self, *args, **kwargs)

        return cast(F, inner)  # the same signature: wraps() copies the rest

    return wrap


class Service:
    """One area of the CRM's operations, working in the facade's unit of work.

    The properties are the facade's own (``self.db`` is ``self.crm.db``), so an
    operation reads as it would on the facade while the facade stays the one
    owner of the transaction, the principal, the hooks and the clock."""

    #: the facade's attribute for this service (``customers`` for ``crm.customers``)
    area = ""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    @property
    def db(self) -> DB:
        """The query layer of the open transaction (``crm.db``)."""
        return self.crm.db

    @property
    def hook(self) -> Any:
        """The plugin hooks (``crm.hook``)."""
        return self.crm.hook

    @property
    def config(self) -> Config:
        """The CRM's configuration (``crm.config``)."""
        return self.crm.config

    @property
    def plugins(self) -> Plugins:
        """The enabled plugins (``crm.plugins``)."""
        return self.crm.plugins

    def now(self) -> dt.datetime:
        """The CRM's clock (``crm.now()``)."""
        return self.crm.now()

    def __repr__(self) -> str:
        return f"<crm.{self.area}>"
