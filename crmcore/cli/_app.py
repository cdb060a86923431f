"""The ``crm`` group, its context, output helpers and error handling.

Plugin commands are found lazily: ``crm retail ...`` loads the config and the
enabled plugins only when a command that is not built in is asked for.

Longer than most modules: the group, its context and the output helpers every command
uses belong together.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, overload

import attrs
import click

from crmcore.errors import CRMError

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print only JSON on stdout.")
JSON_OPTION.__doc__ = """The ``--json`` flag of a command, passed as ``as_json``: with it the
command prints only JSON on stdout (see :func:`emit`)."""


def to_plain(value: Any) -> Any:
    """JSON-able form of entities, datetimes, dicts and lists."""
    if attrs.has(type(value)):
        return {k: to_plain(v) for k, v in attrs.asdict(value, recurse=False).items()}
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset | Sequence) and not isinstance(
        value, str | bytes
    ):
        return [to_plain(v) for v in value]
    return value


MASKING_CRM = "crm.masking_crm"  # ctx.meta key: the CRM whose principal output is masked for


def masked_for_output(data: Any) -> Any:
    """``data`` with personal data masked for the acting principal of the running
    command (see crmcore.masking); unchanged outside a command or with 'pii'."""
    ctx = click.get_current_context(silent=True)
    crm = ctx.meta.get(MASKING_CRM) if ctx is not None else None
    if crm is None:
        return data
    from crmcore.masking import Masker

    return Masker.for_crm(crm).output(data)


def emit(data: Any, as_json: bool, human: Callable[[Any], str] | str | None = None) -> None:
    """Print ``data`` as JSON (``--json``) or as the human text ``human`` makes of it;
    personal data is masked first for a principal without 'pii'.

    The JSON is always valid: NaN or an infinity in ``data`` is refused with a
    clear error (:class:`crmcore.cli.output.NonFiniteOutput`), never printed."""
    from crmcore.cli.output import to_json

    data = masked_for_output(data)
    if as_json or human is None:
        click.echo(to_json(to_plain(data)))
    elif isinstance(human, str):
        click.echo(human)
    else:
        click.echo(human(data))


@overload
def parse_at(value: str, field: str = ...) -> dt.datetime: ...
@overload
def parse_at(value: None, field: str = ...) -> None: ...
@overload
def parse_at(value: str | None, field: str = ...) -> dt.datetime | None: ...


def parse_at(value: str | None, field: str = "--at") -> dt.datetime | None:
    """An ISO date or date-time option (``--at``, ``--due``, ``--since`` ...),
    None when absent; bad input is an error naming ``field``. A time with an
    offset (``2026-01-05T01:00+00:00``) is converted into the deployment's zone
    (``[crm] timezone``), the zone every stored time is in, not the machine's."""
    from crmcore.parse import parse_datetime

    if value is None:
        return None
    return parse_datetime(value, field=field, zone=_deployment_zone())


def _deployment_zone() -> dt.tzinfo | None:
    """The ``[crm] timezone`` of the command's CRM (None: the machine's zone)."""
    from crmcore.clock import load_zone

    ctx = click.get_current_context(silent=True)
    crm = ctx.meta.get(MASKING_CRM) if ctx is not None else None
    name = crm.config.core.get("timezone") if crm is not None else None
    return load_zone(name) if name else None


@attrs.define
class AppContext:
    """What the ``crm`` group parsed; builds the CRM on first use."""

    config_path: str | None
    database: str | None
    principal: str | None
    command: str = "crm"
    _crm: Any = None

    @classmethod
    def of(cls, ctx: click.Context) -> AppContext:
        """The AppContext the ``crm`` group put on ``ctx`` (or a parent of it)."""
        app = ctx.find_object(cls)
        if app is None:
            raise RuntimeError(f"{ctx.command_path}: run as a command of the crm group")
        return app

    def config(self) -> Any:
        """The loaded configuration. Without a config file (``--config``,
        ``CRM_CONFIG`` or ./crm.toml) and without ``--db`` there is nothing to work
        on: say so rather than create a database here."""
        from crmcore import config

        if self._crm is not None:
            return self._crm.config
        if not self.has_config():
            raise config.ConfigError(config.NO_CONFIG_HERE)
        return config.load(self.config_path, database=self.database)

    def has_config(self) -> bool:
        """Whether there is a configuration to load: a named file, ``--db``, or ./crm.toml."""
        from pathlib import Path

        from crmcore import config

        return bool(
            self._crm is not None
            or self.config_path
            or self.database
            or Path(config.DEFAULT_PATH).exists()
        )

    def crm(self) -> Any:
        if self._crm is not None and self.principal:  # a preset CRM (tests) acting as --as
            return self._crm.as_(self.principal, command=self.command)
        if self._crm is not None:
            return self._crm._clone(command=self.command)
        if self._crm is None:
            self._crm = build_crm(self.config(), principal=self.principal, command=self.command)
        return self._crm


# Commands that may create the database a configuration names; every other
# command refuses a SQLite file that does not exist instead of creating it empty.
CREATE_DATABASE_COMMANDS = frozenset({"db upgrade"})
# Commands that work on a database whose schema is not (yet) the code's: they
# create, upgrade, copy or replace it, or need no database. Every other command
# first checks that the migrations of the core and the enabled plugins are applied.
SCHEMA_UNCHECKED_COMMANDS = frozenset(
    {"db upgrade", "db backup", "db restore", "init", "demo", "plugins list"}
)


def _subcommand(ctx: click.Context) -> str:
    """The command below ``crm``, e.g. ``db upgrade`` (whatever the program is called)."""
    names: list[str] = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


def build_crm(cfg: Any, **kwargs: Any) -> Any:
    """A CRM for ``cfg``; configuration warnings (a list that replaced a default)
    are printed as one line each on stderr."""
    import warnings

    from crmcore.errors import ConfigWarning
    from crmcore.service import CRM

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConfigWarning)
        crm = CRM(cfg, **kwargs)
    for w in caught:
        if issubclass(w.category, ConfigWarning):
            click.echo(f"warning: {w.message}", err=True)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return crm


def pass_crm(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Give a click command the CRM as its first argument (plugins use this too)."""

    @functools.wraps(fn)
    @click.pass_context
    def inner(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        app = AppContext.of(ctx)
        app.command = ctx.command_path
        crm = app.crm()
        if _subcommand(ctx) not in CREATE_DATABASE_COMMANDS:
            from crmcore.config import require_database_file

            require_database_file(crm.config)
        if _subcommand(ctx) not in SCHEMA_UNCHECKED_COMMANDS:
            crm.admin.check_schema()
        ctx.meta[MASKING_CRM] = crm
        try:
            if app.principal:  # an unknown --as is refused by every command, first
                crm.staff.acting_principal()
            return fn(crm, *args, **kwargs)
        except CRMError as e:
            click.echo(f"error: {e}", err=True)
            raise click.exceptions.Exit(1) from None

    return inner


class CRMGroup(click.Group):
    """Built-in commands plus those of the enabled plugins; a CRMError anywhere
    becomes one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CRMError as e:
            click.echo(f"error: {e}", err=True)
            raise click.exceptions.Exit(1) from None
        except ImportError as e:  # an optional dependency a feature needs
            from crmcore.extras import missing

            explained = missing(e)
            if explained is None:
                raise
            click.echo(f"error: {explained}", err=True)
            raise click.exceptions.Exit(1) from None

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # `crm --config X --help` prints help (an eager option) before --config is
        # processed: note the global options first so the plugin groups are listed.
        early: dict[str, str] = {}
        names = {"--config": "config_path", "--db": "database", "--as": "principal"}
        for i, arg in enumerate(args):
            flag, eq, value = arg.partition("=")
            if flag in names:
                if eq:
                    early[names[flag]] = value
                elif i + 1 < len(args):
                    early[names[flag]] = args[i + 1]
        ctx.meta["crm.early_options"] = early
        return super().parse_args(ctx, args)

    @staticmethod
    def _app(ctx: click.Context) -> AppContext:
        # click resolves the subcommand before running the group's callback
        if not isinstance(ctx.obj, AppContext):
            early = ctx.meta.get("crm.early_options", {})

            def option(name: str, env: str) -> str | None:
                return ctx.params.get(name) or early.get(name) or os.environ.get(env) or None

            ctx.obj = AppContext(
                config_path=option("config_path", "CRM_CONFIG"),
                database=option("database", "CRM_DATABASE_URL"),
                principal=option("principal", "CRM_AS"),
            )
        return ctx.obj

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        """The enabled plugins' commands, for listing: from entry-point metadata when
        every enabled plugin declares its commands there (nothing is imported), else
        from the loaded plugins."""
        app = self._app(ctx)
        if app._crm is None:
            listed = listed_plugin_commands(app.config_path)
            if listed is not None:
                return listed
        try:
            return dict(app.crm().plugins.declared.get("command", {}))
        except CRMError:
            return {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugin_commands(ctx)))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own version calls get_command for every name, which would load
        # every enabled plugin just to print one line about each
        plugin_cmds = self._plugin_commands(ctx)
        rows = []
        for name in sorted(set(self.commands) | set(plugin_cmds)):
            cmd = self.commands.get(name) or plugin_cmds[name]
            if not cmd.hidden:
                rows.append((name, cmd))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is not None:
            return cmd
        app = self._app(ctx)
        plugin_cmds = app.crm().plugins.declared.get("command", {})  # errors surface here, clearly
        return plugin_cmds.get(name)


# the groups of crmcore.plugins, not imported here: it loads pluggy and jsonschema
PLUGINS_ENTRY_POINTS = "crmcore.plugins"
COMMANDS_ENTRY_POINTS = "crmcore.commands"


def listed_plugin_commands(config_path: str | None) -> dict[str, click.Command] | None:
    """Name -> a placeholder command (the distribution's summary as its help) for
    each command the enabled plugins declare in the ``crmcore.commands`` entry-point
    group, read from crm.toml and the installed metadata without importing a plugin.

    None when that is not enough to answer (the config cannot be read here, a
    plugin is not installed, shares its distribution with another plugin or
    declares no command entry points): the caller then loads the plugins.
    """
    import importlib.metadata
    import tomllib
    from pathlib import Path

    explicit = config_path or os.environ.get("CRM_CONFIG")
    path = Path(explicit or "crm.toml")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None if explicit else {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    core = raw.get("crm", {})
    enabled = core.get("plugins", []) if isinstance(core, dict) else None
    if not isinstance(enabled, list) or not all(isinstance(n, str) for n in enabled):
        return None
    plugins: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=PLUGINS_ENTRY_POINTS):
        plugins.setdefault(ep.name, ep)
    listed: dict[str, click.Command] = {}
    for name in enabled:
        dist = getattr(plugins.get(name), "dist", None)
        if dist is None:
            return None
        groups = [ep.group for ep in dist.entry_points]
        if groups.count(PLUGINS_ENTRY_POINTS) != 1 or COMMANDS_ENTRY_POINTS not in groups:
            return None
        summary = dist.metadata["Summary"] or f"Commands of the {name} plugin."
        for ep in dist.entry_points:
            if ep.group == COMMANDS_ENTRY_POINTS:
                listed[ep.name] = click.Command(ep.name, help=summary)
    return listed


@click.group(cls=CRMGroup)
@click.option(
    "--config",
    "config_path",
    envvar="CRM_CONFIG",
    metavar="PATH",
    help="Configuration file (default ./crm.toml; env CRM_CONFIG).",
)
@click.option(
    "--db",
    "database",
    envvar="CRM_DATABASE_URL",
    metavar="URL",
    help="Database URL, e.g. sqlite:///crm.db or postgresql://host/db (env CRM_DATABASE_URL).",
)
@click.option(
    "--as",
    "principal",
    envvar="CRM_AS",
    metavar="STAFF",
    help="Act as this member of staff (env CRM_AS; default: the config's default_principal).",
)
@click.version_option(package_name="crmcore")
@click.pass_context
def cli(
    ctx: click.Context, config_path: str | None, database: str | None, principal: str | None
) -> None:
    """crm: customers, relationships and lifecycle, with industry plugins."""
    if isinstance(ctx.obj, AppContext):  # preset by a test harness
        ctx.obj.principal = principal or ctx.obj.principal
        return
    ctx.obj = AppContext(config_path=config_path, database=database, principal=principal)


def main(argv: list[str] | None = None) -> None:
    """Entry point: CRM errors become one line on stderr and exit status 1."""
    try:
        rv = cli.main(args=argv, prog_name="crm", standalone_mode=False)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except CRMError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    except (UnicodeDecodeError, UnicodeEncodeError) as e:
        click.echo(f"error: text is not valid UTF-8 ({e.reason})", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as e:  # a bug, not a user mistake: one line unless debugging
        if os.environ.get("CRM_DEBUG"):
            raise
        click.echo(
            f"internal error: {type(e).__name__}: {e} (set CRM_DEBUG=1 for the traceback)", err=True
        )
        sys.exit(1)
