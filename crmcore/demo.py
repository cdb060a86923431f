"""``crm demo``: a database with every installed plugin enabled and sample data.

The core loads its own sample staff and customers; each plugin adds its trade's
data through the ``crm_demo`` hook and says what to look at.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import Any

from crmcore import config as config_mod
from crmcore.access import SYSTEM
from crmcore.errors import CRMError, ValidationError
from crmcore.plugins import installed

DEMO_AT = dt.datetime(2026, 6, 15, 9, 0)
DEMO_ZONE = "Asia/Shanghai"
# written to the demo's crm.toml: later commands see the same "now" as the demo
DEMO_CLOCK = f"{DEMO_AT:%Y-%m-%dT%H:%M:%S}+08:00"


def _core_data(crm: Any) -> str:
    crm.staff.add("li", "Li Na", roles=["supervisor"], team="north")
    crm.staff.add("zhang", "Zhang Wei", roles=["rep"], team="north", supervisor="li")
    crm.staff.add("chen", "Chen Jie", roles=["rep"], team="north", supervisor="li")
    a = crm.customers.add(
        "Wu Fang",
        phone="139 0000 1111",
        email="wu.fang@example.cn",
        owner="zhang",
        external_id="C-1001",
    )
    b = crm.customers.add("Wu Lei", phone="139 0000 2222", owner="zhang", external_id="C-1002")
    crm.customers.add_relationship("household", b, to_customer=a, note="son")
    crm.customers.change_stage(a, "new", reason="first purchase")
    crm.customers.change_stage(a, "developing", reason="third purchase in a month")
    crm.records.add_interaction(
        a, "call", "asked about the autumn promotion", at=DEMO_AT - dt.timedelta(days=3)
    )
    t = crm.tickets.open(
        a, "delivery arrived two days late", owner="zhang", at=DEMO_AT - dt.timedelta(days=2)
    )
    crm.tickets.move(t, "review", note="courier confirmed the delay")
    crm.tickets.add_reminder(
        "zhang", "call Wu Fang about the late delivery", DEMO_AT + dt.timedelta(days=1), customer=a
    )
    return "core: 3 staff, 2 customers in one household, a complaint in review, a reminder for tomorrow"


MARKER = ".crmcore-demo"
# What a demo directory may hold: the files the demo writes and those its
# config directs later commands to (the database's journals, the outbox log).
DEMO_FILES = (
    "crm.toml",
    "crm.db",
    "crm.db-wal",
    "crm.db-shm",
    "crm.db-journal",
    "outbox.log",
    MARKER,
)


def _previous_demo(directory: Path) -> bool:
    """Whether ``directory`` holds a previous demo (False: missing or empty).

    Anything else is refused, naming what is there: the demo never removes a
    file it did not write.
    """
    if directory.is_symlink():
        raise ValidationError(f"{directory}: is a symbolic link; give --dir a directory of its own")
    if not directory.exists():
        return False
    if not directory.is_dir():
        raise ValidationError(f"{directory}: is not a directory; choose another --dir")
    present = sorted(p.name for p in directory.iterdir())
    if not present:
        return False
    if MARKER not in present:
        raise ValidationError(
            f"{directory}: is not empty and holds no crmcore demo (no {MARKER} file); choose a "
            "new or empty --dir, or empty it yourself (nothing was changed)"
        )
    foreign = [name for name in present if name not in DEMO_FILES]
    if foreign:
        raise ValidationError(
            f"{directory}: holds files the demo did not write ({', '.join(foreign)}); move them "
            "or choose another --dir (nothing was changed)"
        )
    return True


def load_demo_data(crm: Any, command_prefix: str = "crm", *, command: str = "crm demo") -> list[str]:
    """Load the core's demo data and every enabled plugin's (``crm_demo``), each
    in its own transaction, into ``crm``; returns the lines to print. Tests use it
    to get demo-like data into a CRM of their own."""
    with crm.transaction(command=command):
        lines = [_core_data(crm)]
    arguments = {"crm": crm, "command_prefix": command_prefix}
    for impl in reversed(crm.hook.crm_demo.get_hookimpls()):
        with crm.transaction(command=f"{command} {impl.plugin_name}"):
            text = impl.function(**{k: v for k, v in arguments.items() if k in impl.argnames})
        if text:
            lines += ["", f"== {impl.plugin_name} ==", text.rstrip()]
    return lines


def _render_config(names: list[str]) -> str:
    """The demo's crm.toml. Its paths are relative to the file's own directory,
    so the demo works from anywhere and can be moved."""
    return (
        config_mod.render_default("sqlite:///crm.db", names)
        + 'outbox_path = "outbox.log"\n'
        + "# The demo's data is dated around this moment; every command against this\n"
        + "# database runs at it. Delete the clock line to use the real time.\n"
        + f'timezone = "{DEMO_ZONE}"\n'
        + f'clock = "{DEMO_CLOCK}"\n'
    )



def run_demo(directory: Path) -> dict[str, Any]:
    """Build the demo in ``directory``: a new or empty directory, or a previous
    demo's (recognised by its marker file), whose files alone are replaced.

    The demo is built in a temporary sibling directory and moved into place
    when complete, so a failed demo (a plugin that cannot load, a missing extra)
    leaves no half-built directory and a previous demo untouched.
    """
    directory = Path(directory)
    place = Path(os.path.abspath(directory))
    replacing = _previous_demo(place)
    place.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=place.parent, prefix=f".{place.name}.building-"))
    try:
        out = _build(building, directory)
        if _previous_demo(place) != replacing:  # changed while we built: start again
            raise ValidationError(f"{directory}: changed while the demo was built; run it again")
        try:
            if place.exists():  # empty, or a previous demo: keep the directory itself
                built = {p.name for p in building.iterdir()}
                for name in DEMO_FILES:
                    if name not in built:
                        (place / name).unlink(missing_ok=True)
                for name in sorted(built - {MARKER}) + [MARKER]:  # the marker last
                    os.replace(building / name, place / name)
                building.rmdir()
            else:
                os.rename(building, place)
        except OSError as e:
            raise CRMError(f"{directory}: cannot move the demo into place ({e.strerror})") from None
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)  # only the directory made above
        raise
    if replacing:
        out["text"] = f"replaced the previous demo in {directory}/\n" + out["text"]
    return out


def _build(building: Path, directory: Path) -> dict[str, Any]:
    """Build the demo in ``building`` with the config of its final place ``directory``."""
    from crmcore.cli._admin import _bootstrap
    from crmcore.service import CRM

    names = sorted(installed())
    building_config = building / "crm.toml"
    building_config.write_text(_render_config(names), encoding="utf-8")
    config_path = directory / "crm.toml"
    cfg = config_mod.load(building_config)
    crm = CRM(cfg, principal=SYSTEM, command="crm demo")  # at the config's fixed clock
    prefix = "crm --config " + shlex.quote(str(config_path))
    try:
        _bootstrap(crm)
        lines = [
            f"crmcore demo in {directory}/ (config {config_path}), as of {DEMO_AT:%Y-%m-%d %H:%M}",
            f"clock: every command against this database runs at {DEMO_AT:%Y-%m-%d %H:%M} "
            f"{DEMO_ZONE} ([crm] clock in {config_path}; delete that line for the real time)",
            f"plugins enabled: {', '.join(crm.plugins.order) or 'none installed'}",
            "",
        ]
        lines += load_demo_data(crm, prefix)
        outbox = crm.messages.outbox(status="queued")
    finally:
        crm.engine.dispose()  # the last connection closes: the journal files are folded in
    (building / MARKER).write_text(
        json.dumps({"crmcore_demo": 1, "files": list(DEMO_FILES)}) + "\n", encoding="utf-8"
    )
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
