"""``crm demo``: a database with every installed plugin enabled and sample data.

The core loads its own sample staff and customers; each plugin adds its trade's
data through the ``crm_demo`` hook and says what to look at.
"""

from __future__ import annotations

import datetime as dt
import shlex
import shutil
from pathlib import Path
from typing import Any

from crmcore import config as config_mod
from crmcore.access import SYSTEM
from crmcore.plugins import installed

DEMO_AT = dt.datetime(2026, 6, 15, 9, 0)
DEMO_ZONE = "Asia/Shanghai"
# written to the demo's crm.toml: later commands see the same "now" as the demo
DEMO_CLOCK = f"{DEMO_AT:%Y-%m-%dT%H:%M:%S}+08:00"


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
        config_mod.render_default(f"sqlite:///{directory / 'crm.db'}", names)
        + f'outbox_path = "{directory / "outbox.log"}"\n'
        + "# The demo's data is dated around this moment; every command against this\n"
        + "# database runs at it. Delete the clock line to use the real time.\n"
        + f'timezone = "{DEMO_ZONE}"\n'
        + f'clock = "{DEMO_CLOCK}"\n',
        encoding="utf-8",
    )
    cfg = config_mod.load(config_path)
    crm = CRM(cfg, principal=SYSTEM, command="crm demo")
    _bootstrap(crm)
    prefix = "crm --config " + shlex.quote(str(config_path))
    lines = [
        f"crmcore demo in {directory}/ (config {config_path}), as of {DEMO_AT:%Y-%m-%d %H:%M}",
        f"clock: every command against this database runs at {DEMO_AT:%Y-%m-%d %H:%M} "
        f"{DEMO_ZONE} ([crm] clock in {config_path}; delete that line for the real time)",
        f"plugins enabled: {', '.join(crm.plugins.order) or 'none installed'}",
        "",
    ]
    with crm.transaction(command="crm demo"):
        lines.append(_core_data(crm))
    arguments = {"crm": crm, "command_prefix": prefix}
    for impl in reversed(crm.hook.crm_demo.get_hookimpls()):
        with crm.transaction(command=f"crm demo {impl.plugin_name}"):
            text = impl.function(**{k: v for k, v in arguments.items() if k in impl.argnames})
        if text:
            lines += ["", f"== {impl.plugin_name} ==", text.rstrip()]
    outbox = crm.outbox(status="queued")
    lines += [
        "",
        f"outbox: {len(outbox)} messages queued (send with: {prefix} outbox send)",
        f"try:    {prefix} timeline C-1001",
        f"        {prefix} plugins list",
    ]
    return {
        "directory": str(directory),
        "config": str(config_path),
        "plugins": crm.plugins.order,
        "text": "\n".join(lines),
    }
