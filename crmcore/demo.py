"""``crm demo``: a database with every installed plugin enabled and sample data.

The core loads its own sample staff and customers; each plugin adds its trade's
data through the ``crm_demo`` hook and says what to look at.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

from crmcore import config as config_mod
from crmcore.access import SYSTEM
from crmcore.clock import FixedClock
from crmcore.plugins import installed

DEMO_AT = dt.datetime(2026, 6, 15, 9, 0)


def _core_data(crm: Any) -> str:
    crm.add_staff("li", "Li Na", roles=["supervisor"], team="north")
    crm.add_staff("zhang", "Zhang Wei", roles=["rep"], team="north", supervisor="li")
    crm.add_staff("chen", "Chen Jie", roles=["rep"], team="north", supervisor="li")
    a = crm.add_customer(
        "Wu Fang",
        phone="139 0000 1111",
        email="wu.fang@example.cn",
        owner="zhang",
        external_id="C-1001",
    )
    b = crm.add_customer("Wu Lei", phone="139 0000 2222", owner="zhang", external_id="C-1002")
    crm.add_relationship("household", b, to_customer=a, note="son")
    crm.change_stage(a, "new", reason="first purchase")
    crm.change_stage(a, "developing", reason="third purchase in a month")
    crm.record_interaction(
        a, "call", "asked about the autumn promotion", at=DEMO_AT - dt.timedelta(days=3)
    )
    t = crm.open_ticket(
        a, "delivery arrived two days late", owner="zhang", at=DEMO_AT - dt.timedelta(days=2)
    )
    crm.move_ticket(t, "review", note="courier confirmed the delay")
    crm.add_reminder(
        "zhang", "call Wu Fang about the late delivery", DEMO_AT + dt.timedelta(days=1), customer=a
    )
    return "core: 3 staff, 2 customers in one household, a complaint in review, a reminder for tomorrow"


def run_demo(directory: Path) -> dict[str, Any]:
    from crmcore.cli._admin import _bootstrap
    from crmcore.service import CRM

    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    names = sorted(installed())
    config_path = directory / "crm.toml"
    config_path.write_text(
        # paths in crm.toml are relative to its directory: the demo can be moved
        config_mod.render_default("sqlite:///crm.db", names) + 'outbox_path = "outbox.log"\n',
        encoding="utf-8",
    )
    cfg = config_mod.load(config_path)
    crm = CRM(cfg, clock=FixedClock(DEMO_AT), principal=SYSTEM, command="crm demo")
    _bootstrap(crm)
    lines = [
        f"crmcore demo in {directory}/ (config {config_path}), as of {DEMO_AT:%Y-%m-%d %H:%M}",
        f"plugins enabled: {', '.join(crm.plugins.order) or 'none installed'}",
        "",
    ]
    with crm.transaction(command="crm demo"):
        lines.append(_core_data(crm))
    for impl in reversed(crm.hook.crm_demo.get_hookimpls()):
        with crm.transaction(command=f"crm demo {impl.plugin_name}"):
            text = impl.function(crm=crm)
        if text:
            lines += ["", f"== {impl.plugin_name} ==", text.rstrip()]
    outbox = crm.outbox(status="queued")
    lines += [
        "",
        f"outbox: {len(outbox)} messages queued (send with: crm --config {config_path} outbox send)",
        f"try:    crm --config {config_path} timeline C-1001",
        f"        crm --config {config_path} plugins list",
    ]
    return {
        "directory": str(directory),
        "config": str(config_path),
        "plugins": crm.plugins.order,
        "text": "\n".join(lines),
    }
