"""The ``crm`` group, its context, output helpers and error handling.

Plugin commands are found lazily: ``crm retail ...`` loads the config and the
enabled plugins only when a command that is not built in is asked for.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import click

from crmcore.errors import CRMError

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print only JSON on stdout.")


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


def emit(data: Any, as_json: bool, human: Callable[[Any], str] | str | None = None) -> None:
    """Print ``data`` as JSON (``--json``) or as the human text ``human`` makes of it.

    The JSON is always valid: NaN or an infinity in ``data`` is refused with a
    clear error (:class:`crmcore.cli.output.NonFiniteOutput`), never printed."""
    from crmcore.cli.output import to_json

    if as_json or human is None:
        click.echo(to_json(to_plain(data)))
    elif isinstance(human, str):
        click.echo(human)
    else:
        click.echo(human(data))


def parse_at(value: str | None) -> dt.datetime | None:
    from crmcore.clock import parse_when

    return None if value is None else parse_when(value, what="--at")


@attrs.define
class AppContext:
    """What the ``crm`` group parsed; builds the CRM on first use."""

    config_path: str | None
    database: str | None
    principal: str | None
    command: str = "crm"
    _crm: Any = None

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
        app: AppContext = ctx.find_object(AppContext)
        app.command = ctx.command_path
        crm = app.crm()
        if _subcommand(ctx) not in CREATE_DATABASE_COMMANDS:
            from crmcore.config import require_database_file

            require_database_file(crm.config)
        try:
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
        app = self._app(ctx)
        try:
            return {
                name: cmd for name, cmd in app.crm().plugins.declared.get("command", {}).items()
            }
        except CRMError:
            return {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugin_commands(ctx)))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is not None:
            return cmd
        app = self._app(ctx)
        plugin_cmds = app.crm().plugins.declared.get("command", {})  # errors surface here, clearly
        return plugin_cmds.get(name)


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
