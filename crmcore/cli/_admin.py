"""crm init / db / plugins / demo commands."""

from __future__ import annotations

import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import click

from crmcore.cli._app import JSON_OPTION, AppContext, build_crm, cli, emit, pass_crm
from crmcore.errors import ConfigError


def _bootstrap(crm: Any) -> list[str]:
    """Create the schema and the admin member of staff (idempotent)."""
    from crmcore.access import SYSTEM
    from crmcore.errors import NotFound

    branches = crm.admin.upgrade()
    system = crm.as_(SYSTEM, command="crm init")
    try:
        system.staff.get("admin")
    except NotFound:
        system.staff.add("admin", "Administrator", roles=["admin"])
    return branches


@cli.command()
@click.option(
    "--db",
    "database",
    metavar="URL",
    help="Database URL to create and write into crm.toml (default sqlite:///crm.db).",
)
@click.option("--plugin", "plugins", multiple=True, help="Enable this plugin (repeatable).")
@JSON_OPTION
@click.pass_context
def init(ctx: click.Context, database: str | None, plugins: tuple[str, ...], as_json: bool) -> None:
    """Create the schema and write crm.toml.

    crm.toml is written, if absent, only once the schema exists, so a failed init
    (a misspelt plugin, a bad URL) leaves neither a config file nor a database it
    created; running it twice changes nothing.
    """
    from crmcore import config as config_mod

    app = AppContext.of(ctx)
    database = database or app.database
    path = Path(app.config_path or config_mod.DEFAULT_PATH)
    if path.exists():
        text = None
        cfg = config_mod.load(path, database=database)
        if plugins and set(plugins) - set(cfg.enabled):
            click.echo(
                f"note: {path} exists and was kept; add plugins to [crm] plugins there", err=True
            )
    else:
        if not path.parent.is_dir():
            raise ConfigError(f"{path}: directory {str(path.parent)!r} does not exist")
        url = _as_written_in(path, database) if database else "sqlite:///crm.db"
        text = config_mod.render_default(url, list(plugins))
        cfg = config_mod.from_dict(tomllib.loads(text), path=path)
    created = _new_sqlite_files(cfg.database)
    try:
        crm = build_crm(cfg, command="crm init")
        branches = _bootstrap(crm)
        crm.engine.dispose()
        if text is not None:
            _write_atomically(path, text)
    except BaseException:
        for leftover in created:
            leftover.unlink(missing_ok=True)
        raise
    data = {
        "config": str(path),
        "config_written": text is not None,
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


def _as_written_in(config_path: Path, url: str) -> str:
    """``url`` (from ``--db``) as crm.toml must say it: a relative SQLite path given
    on the command line is relative to the current directory, one in the file to
    the file's directory, so rewrite it for the file. A mistyped URL is refused
    here, naming ``--db``."""
    from crmcore import dburl

    file = dburl.sqlite_path(dburl.parse(url, where="--db"))
    if file is None or file.is_absolute():
        return url
    target = file.resolve()
    base = config_path.parent.resolve()
    return f"sqlite:///{target.relative_to(base) if target.is_relative_to(base) else target}"


def _new_sqlite_files(url: str) -> list[Path]:
    """The SQLite file of ``url`` and its journal files, if init would create them
    (so a failed init can remove what it made, and nothing else)."""
    from crmcore import dburl

    try:
        file = dburl.sqlite_path(url)
    except Exception:
        return []
    if file is None or file.exists():
        return []
    return [file, *(file.with_name(file.name + s) for s in ("-wal", "-shm", "-journal"))]


def _write_atomically(path: Path, text: str) -> None:
    """Write ``path`` through a temporary file renamed over it, so a reader (or a
    crash) sees the whole file or none; an existing file is never replaced."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails if the file appeared meanwhile: never clobber it
        except FileExistsError:
            raise ConfigError(
                f"{path} appeared while init ran; it was kept, run init again"
            ) from None
        except OSError:  # a file system without hard links
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@cli.group()
def db() -> None:
    """Schema upgrade, backup and restore."""


@db.command("upgrade")
@JSON_OPTION
@pass_crm
def db_upgrade(crm: Any, as_json: bool) -> None:
    """Upgrade the schema of core and plugins.

    Applies the pending migrations of the core and each enabled plugin."""
    before = _schema_state(crm.engine)
    branches = crm.admin.upgrade()
    changed = _schema_state(crm.engine) != before
    emit(
        {"upgraded": branches, "changed": changed},
        as_json,
        lambda d: (
            ("upgraded: " if d["changed"] else "already up to date: ") + ", ".join(d["upgraded"])
        ),
    )


def _schema_state(engine: Any) -> tuple[frozenset[str], frozenset[str]]:
    """The applied migration heads and the tables: what an upgrade can change."""
    from sqlalchemy import inspect

    from crmcore.migrate import current_heads

    with engine.connect() as conn:
        tables = frozenset(inspect(conn).get_table_names())
    return frozenset(current_heads(engine)), tables


@db.command("backup")
@click.argument("path", type=click.Path(dir_okay=False))
@JSON_OPTION
@pass_crm
def db_backup(crm: Any, path: str, as_json: bool) -> None:
    """Back the database up to PATH.

    SQLite: an online backup; PostgreSQL: pg_dump."""
    from crmcore.backup import backup

    crm.staff.require_admin("back up the database")
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
    """Replace the database with a backup.

    Replaces the database's content with the backup in PATH."""
    from crmcore.backup import inspect_backup, restore

    crm.staff.require_admin("restore the database")
    if not yes and not as_json:
        info = inspect_backup(crm.engine, path)
        held = (
            f"{info['customers']} customers, {info['transactions']} transactions, "
            if info["customers"] is not None
            else ""
        )
        click.confirm(
            f"{path} holds {held}schema {', '.join(info['versions'])}. "
            f"Replace everything in {crm.config.database} with it?",
            abort=True,
        )
    emit(restore(crm.engine, path), as_json, _restored)


def _restored(d: dict[str, Any]) -> str:
    text = (
        f"restored from {d['restored_from']}: schema {', '.join(d['versions'])}; "
        f"{d['customers']} customers, {d['transactions']} transactions"
    )
    return text + (f"\nnote: {d['note']}" if d["note"] else "")


@cli.group()
def plugins() -> None:
    """Installed plugins and their hooks."""


@plugins.command("list")
@JSON_OPTION
@click.pass_context
def plugins_list(ctx: click.Context, as_json: bool) -> None:
    """Installed plugins and their hooks.

    Each installed plugin's name, version, whether it is enabled, and its hooks."""
    from crmcore import plugins as plugins_mod

    app = AppContext.of(ctx)
    # what is installed needs no configuration: without one, nothing is enabled
    enabled = set(app.config().enabled) if app.has_config() else set()
    data = []
    for name, ep in sorted(plugins_mod.installed().items()):
        module = plugins_mod._load(name, ep)
        info = plugins_mod.plugin_info(module, name, ep)
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
    """Each hook and its implementations.

    The implementations are listed in the order they are called."""
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
    """Delete a disabled plugin's data.

    Shows what it would delete first."""
    plan = crm.admin.purge_plan(name)
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
    crm.admin.purge_plugin(name)
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
    """Create and show a demo CRM.

    Every installed plugin is enabled and sample data loaded."""
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
    verdict = crm.admin.verify_audit_trail()
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
