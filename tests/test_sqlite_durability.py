"""SQLite durability: ``[crm] sqlite_synchronous`` (PRAGMA synchronous), FULL by default."""

from __future__ import annotations

import pytest

from crmcore import CRM, ConfigError
from crmcore.access import SYSTEM
from crmcore.config import from_dict
from crmcore.db import make_engine


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
