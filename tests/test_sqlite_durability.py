"""SQLite durability: ``[crm] sqlite_synchronous`` (PRAGMA synchronous), FULL by default."""

from __future__ import annotations

import pytest

from crmcore import CRM, ConfigError
from crmcore.access import SYSTEM
from crmcore.config import from_dict
from crmcore.db import make_engine
from crmcore.storage._driver import connection


def _synchronous(crm: CRM) -> int:
    with crm.engine.connect() as conn:
        return conn.exec_driver_sql("PRAGMA synchronous").scalar()


def test_sqlite_commits_are_synced_by_default(tmp_path):
    cfg = from_dict({"crm": {"database": f"sqlite:///{tmp_path / 'a.db'}"}})
    assert cfg.core["sqlite_synchronous"] == "full"
    assert _synchronous(CRM(cfg, principal=SYSTEM)) == 2  # FULL: a commit survives power loss


@pytest.mark.parametrize(("value", "pragma"), [("full", 2), ("normal", 1), ("off", 0)])
def test_sqlite_synchronous_is_configurable(tmp_path, value, pragma):
    cfg = from_dict(
        {"crm": {"database": f"sqlite:///{tmp_path / 'a.db'}", "sqlite_synchronous": value}}
    )
    assert _synchronous(CRM(cfg, principal=SYSTEM)) == pragma


def test_a_bad_sqlite_synchronous_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"crm\.sqlite_synchronous: expected one of"):
        from_dict({"crm": {"database": "sqlite://", "sqlite_synchronous": "fast"}})
    with pytest.raises(ValueError, match="sqlite_synchronous"):
        make_engine("sqlite://", sqlite_synchronous="FULL; DROP TABLE customers")


def _full_crm(tmp_path, **extra):
    cfg = from_dict({"crm": {"database": f"sqlite:///{tmp_path / 'a.db'}", **extra}})
    crm = CRM(cfg, principal=SYSTEM)
    crm.admin.upgrade()
    return crm


def _inside(crm, **kw) -> int:
    with crm.transaction(**kw) as db:
        return connection(db).exec_driver_sql("PRAGMA synchronous").scalar()


def test_a_non_durable_transaction_skips_the_sync_and_puts_it_back(tmp_path):
    """Recomputable work (the analytics) commits at NORMAL; the next operation
    on the same pooled connection is FULL again, also after a rollback."""
    crm = _full_crm(tmp_path)
    assert _inside(crm, durable=False) == 1
    assert _inside(crm) == 2
    with pytest.raises(RuntimeError), crm.transaction(durable=False):
        raise RuntimeError("boom")
    assert _inside(crm) == 2


def test_a_non_durable_transaction_never_raises_a_weaker_setting(tmp_path):
    crm = _full_crm(tmp_path, sqlite_synchronous="off")
    assert _inside(crm, durable=False) == 0


def test_analytics_commit_unsynced_unless_a_plugin_reacts(tmp_path, monkeypatch):
    from crmcore import analytics, hookimpl

    crm = _full_crm(tmp_path)
    seen: list[int] = []

    def spy(db_self, *a, **k):  # the synchronous level the run commits at
        seen.append(connection(db_self).exec_driver_sql("PRAGMA synchronous").scalar())

    from crmcore.analytics import _sql

    real = _sql.record_run
    monkeypatch.setattr(_sql, "record_run", lambda crm_, *a: (spy(crm_.db), real(crm_, *a))[1])
    analytics.rfm(crm)
    assert seen == [1]

    class Reacts:
        @hookimpl
        def crm_analytics_computed(self, crm, name, as_of, summary):
            pass

    crm.plugins.pm.register(Reacts(), name="reacts")
    analytics.rfm(crm)
    assert seen == [1, 2]
