"""crm init / db / plugins / demo commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from crmcore.cli._app import JSON_OPTION, AppContext, cli, emit, pass_crm


def _bootstrap(crm: Any) -> list[str]:
    """Create the schema and the admin member of staff (idempotent)."""
    from crmcore.access import SYSTEM
    from crmcore.errors import NotFound

    branches = crm.upgrade()
    system = crm.as_(SYSTEM, command="crm init")
    try:
        system.get_staff("admin")
    except NotFound:
        system.add_staff("admin", "Administrator", roles=["admin"])
    return branches


@cli.command()
@click.option("--plugin", "plugins", multiple=True, help="Enable this plugin (repeatable).")
@JSON_OPTION
@click.pass_context
def init(ctx: click.Context, plugins: tuple[str, ...], as_json: bool) -> None:
    """Write crm.toml if absent and create the schema; running it twice changes nothing."""
    from crmcore import config as config_mod
    from crmcore.service import CRM

    app: AppContext = ctx.find_object(AppContext)
    path = Path(app.config_path or config_mod.DEFAULT_PATH)
    wrote = False
    if not path.exists():
        database = app.database or "sqlite:///crm.db"
        path.write_text(config_mod.render_default(database, list(plugins)), encoding="utf-8")
        wrote = True
    cfg = config_mod.load(path, database=app.database)
    if plugins and not wrote and set(plugins) - set(cfg.enabled):
        click.echo(
            f"note: {path} exists and was kept; add plugins to [crm] plugins there", err=True
        )
    crm = CRM(cfg, command="crm init")
    branches = _bootstrap(crm)
    data = {
        "config": str(path),
        "config_written": wrote,
        "database": cfg.database,
        "plugins": crm.plugins.order,
        "schema": branches,
    }
    emit(
        data,
        as_json,
        lambda d: (
            f"{'wrote' if d['config_written'] else 'kept'} {d['config']}; "
            f"database {d['database']} is up to date "
            f"(core + {', '.join(d['plugins']) or 'no plugins'})"
        ),
    )


@cli.group()
def db() -> None:
    """Schema upgrade, backup and restore."""


@db.command("upgrade")
@JSON_OPTION
@pass_crm
def db_upgrade(crm: Any, as_json: bool) -> None:
    """Upgrade the schema of the core and each enabled plugin."""
    emit({"upgraded": crm.upgrade()}, as_json, lambda d: "upgraded: " + ", ".join(d["upgraded"]))


@db.command("backup")
@click.argument("path", type=click.Path(dir_okay=False))
@JSON_OPTION
@pass_crm
def db_backup(crm: Any, path: str, as_json: bool) -> None:
    """Back the database up to PATH (SQLite: online backup; PostgreSQL: pg_dump)."""
    from crmcore.backup import backup

    crm.require_admin_outside("back up the database")
    emit(
        backup(crm.engine, path),
        as_json,
        lambda d: f"backed up to {d['path']} ({d['bytes']} bytes)",
    )


@db.command("restore")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--yes", is_flag=True, help="Replace the database without asking.")
@JSON_OPTION
@pass_crm
def db_restore(crm: Any, path: str, yes: bool, as_json: bool) -> None:
    """Replace the database's content with the backup in PATH."""
    from crmcore.backup import restore

    crm.require_admin_outside("restore the database")
    if not yes and not as_json:
        click.confirm(f"Replace everything in {crm.config.database} with {path}?", abort=True)
    emit(restore(crm.engine, path), as_json, lambda d: f"restored from {d['restored_from']}")


@cli.group()
def plugins() -> None:
    """Installed plugins and their hooks."""


@plugins.command("list")
@JSON_OPTION
@click.pass_context
def plugins_list(ctx: click.Context, as_json: bool) -> None:
    """Every installed plugin: name, version, enabled, hooks implemented."""
    from crmcore import plugins as plugins_mod

    app: AppContext = ctx.find_object(AppContext)
    cfg = app.config()
    enabled = set(cfg.enabled)
    data = []
    for name, ep in sorted(plugins_mod.installed().items()):
        module = plugins_mod._load(name, ep)
        info = plugins_mod.plugin_info(module)
        hooks = sorted(
            n for n in dir(module) if n.startswith("crm_") and callable(getattr(module, n))
        )
        data.append(
            {
                "name": name,
                "version": info.version,
                "enabled": name in enabled,
                "requires": list(info.requires),
                "description": info.description,
                "source": ep.value,
                "hooks": hooks,
            }
        )
    emit(
        data,
        as_json,
        lambda d: (
            "\n".join(
                f"{p['name']:<14} {p['version']:<8} {'enabled' if p['enabled'] else 'disabled':<9} "
                f"{len(p['hooks'])} hooks  {p['description']}"
                for p in d
            )
            or "no plugins installed"
        ),
    )


@plugins.command("hooks")
@JSON_OPTION
@pass_crm
def plugins_hooks(crm: Any, as_json: bool) -> None:
    """For each hook, the implementations in the order they are called."""
    data = {}
    for name in sorted(n for n in dir(crm.hook) if n.startswith("crm_")):
        data[name] = crm.plugins.implementers(name)
    emit(data, as_json, lambda d: "\n".join(f"{k:<34} {', '.join(v) or '-'}" for k, v in d.items()))


@plugins.command("purge")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Delete without asking (after printing the plan).")
@JSON_OPTION
@pass_crm
def plugins_purge(crm: Any, name: str, yes: bool, as_json: bool) -> None:
    """Delete a disabled plugin's data; shows what it would delete first."""
    plan = crm.purge_plan(name)
    if not as_json:
        click.echo(f"purging {name} would delete:")
        for table, n in plan["tables"].items():
            click.echo(f"  table {table}: {n} rows")
        click.echo(
            f"  labels: {plan['labels']}; attribute keys: {', '.join(plan['attributes']) or '-'}"
        )
    if not yes:
        if as_json:
            emit({"plan": plan, "purged": False}, True)
            return
        click.confirm("Delete it?", abort=True)
    crm.purge_plugin(name)
    emit({"plan": plan, "purged": True}, as_json, f"purged {name}")


@cli.command()
@click.option(
    "--dir",
    "directory",
    default="crm-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where to create the demo database and config.",
)
@JSON_OPTION
def demo(directory: str, as_json: bool) -> None:
    """Create a demo CRM with every installed plugin enabled, load sample data, show it."""
    from crmcore.demo import run_demo

    out = run_demo(Path(directory))
    emit(out, as_json, lambda d: d["text"])


class CommandWithVerbs(click.Command):
    """A command whose first argument may instead name one of its ``verbs``:
    ``crm audit [REF]`` lists the trail, ``crm audit verify`` checks it."""

    def __init__(
        self, *args: Any, verbs: dict[str, click.Command] | None = None, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self.verbs: dict[str, click.Command] = dict(verbs or {})

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        if args and args[0] in self.verbs:
            verb = self.verbs[args[0]]
            return verb.make_context(f"{info_name} {args[0]}", args[1:], parent=parent, **extra)
        return super().make_context(info_name, args, parent=parent, **extra)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        if self.verbs:
            with formatter.section("Commands"):
                formatter.write_dl(
                    [(name, verb.get_short_help_str()) for name, verb in self.verbs.items()]
                )


@click.command("verify")
@JSON_OPTION
@pass_crm
def audit_verify(crm: Any, as_json: bool) -> None:
    """Check the hash chain of the audit trail.

    Needs 'audit'. Prints OK with the row count and the head hash, or the first
    row that does not verify and why (exit status 1)."""
    verdict = crm.verify_audit_trail()
    if verdict["ok"]:
        emit(verdict, as_json, lambda d: f"audit trail OK: {d['rows']} rows, head {d['head']}")
        return
    if as_json:
        emit(verdict, True)
    else:
        click.echo(
            f"error: audit trail broken at row {verdict['broken_at']}: {verdict['reason']} "
            f"({verdict['rows']} rows before it verify)",
            err=True,
        )
    raise click.exceptions.Exit(1)
