"""crm.toml: the core's settings, which plugins are enabled, and each plugin's section.

Order of precedence: command-line flags > ``CRM_*`` environment > the file >
defaults. Every error names the file, the key and what was expected.
"""

from __future__ import annotations

import copy
import json
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from crmcore import dburl, jsonschemas, sections
from crmcore.errors import ConfigError
from crmcore.ops import settings as ops_settings

DEFAULT_PATH = "crm.toml"
# Deeper documents are refused before validation: the deepest real section,
# [crm.lifecycle.transitions], is three levels.
MAX_DEPTH = 32
NO_CONFIG_HERE = "no crm.toml here; run `crm init` or pass --config"
DEFAULT_STAGES = ["prospect", "new", "developing", "stable", "declining", "lost"]
DEFAULT_TRANSITIONS = {
    "prospect": ["new", "lost"],
    "new": ["developing", "declining", "lost"],
    "developing": ["stable", "declining", "lost"],
    "stable": ["declining", "lost"],
    "declining": ["developing", "stable", "lost"],  # win-back
    "lost": ["developing"],  # win-back
}
DEFAULT_ROLES = {
    "rep": {"scope": "own", "permissions": ["read", "write", "pii"]},
    "supervisor": {"scope": "team", "permissions": ["read", "write", "pii", "export"]},
    "admin": {
        "scope": "all",
        "permissions": ["read", "write", "pii", "export", "admin", "audit", "configure"],
    },
    "auditor": {"scope": "all", "permissions": ["read", "audit"]},
}

CORE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "database": {"type": "string", "default": "sqlite:///crm.db"},
        # SQLite durability (PRAGMA synchronous): "full" syncs the WAL at every commit
        "sqlite_synchronous": {"enum": ["full", "normal", "off"], "default": "full"},
        "plugins": {"type": "array", "items": {"type": "string"}, "default": []},
        "default_principal": {"type": ["string", "null"], "default": None},
        "outbox_path": {"type": "string", "default": "outbox.log"},
        "outbox_max_attempts": {"type": "integer", "minimum": 1, "default": 5},
        "country_code": {"type": "string", "pattern": "^[0-9]{1,4}$", "default": "86"},
        # the business's zone (IANA name); default: the machine's
        "timezone": {"type": ["string", "null"], "default": None},
        # the language of messages to customers (templates); zh_CN or en
        "message_locale": {"enum": ["zh_CN", "en"], "default": "zh_CN"},
        # a fixed "now" (ISO date-time) for every command against this database
        "clock": {"type": ["string", "null"], "default": None},
        "lifecycle": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "properties": {
                "stages": {
                    "type": "array",
                    "items": {"type": "string"},
                    "minItems": 1,
                    "default": DEFAULT_STAGES,
                },
                "initial": {"type": "string", "default": "prospect"},
                "transitions": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    "default": DEFAULT_TRANSITIONS,
                },
                "rules": sections.LIFECYCLE_RULES_SCHEMA,
                # the stage the loss rate counts (crm lifecycle report); default:
                # "lost" when it is a stage, else the last stage
                "lost_stage": {"type": ["string", "null"], "default": None},
            },
        },
        "followups": sections.FOLLOWUPS_SCHEMA,
        "protect": sections.PROTECT_SCHEMA,
        "roles": {
            "type": "object",
            "default": DEFAULT_ROLES,
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["scope"],
                "properties": {
                    "scope": {"enum": ["own", "team", "all"]},
                    "permissions": {"type": "array", "items": {"type": "string"}, "default": []},
                },
            },
        },
        "workflows": {
            "type": "object",
            "default": {},
            "additionalProperties": {
                "type": "object",
                "required": ["states"],
                "properties": {
                    "states": {"type": "array", "items": {"type": "string"}, "minItems": 2},
                    "transitions": {"type": "object"},
                    "due_hours": {"type": "object", "additionalProperties": {"type": "number"}},
                },
            },
        },
    },
}


@attrs.define
class Config:
    """The loaded configuration. ``core`` has defaults filled in; ``plugins`` holds
    each ``[plugins.NAME]`` section as written (the plugin manager validates them)."""

    path: Path | None
    core: dict[str, Any]
    plugins: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    # [channels.NAME] and [messages], validated (see crmcore.channels.settings)
    channels: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    messages: dict[str, Any] = attrs.field(factory=dict)
    # [jobs.NAME] overrides by job name, and [outbox] (see crmcore.ops.settings)
    jobs: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    outbox: dict[str, Any] = attrs.field(factory=dict)
    # the [web] section as written (validated by crmcore.auth.settings)
    web: dict[str, Any] = attrs.field(factory=dict)

    @property
    def where(self) -> str:
        return str(self.path) if self.path else "configuration"

    @property
    def database(self) -> str:
        return self.core["database"]

    @property
    def enabled(self) -> list[str]:
        return list(self.core["plugins"])


def load(
    path: str | os.PathLike[str] | None = None,
    *,
    database: str | None = None,
    overrides: dict[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Load crm.toml (``path``, else ``$CRM_CONFIG``, else ./crm.toml if present).

    A missing default file is fine (all defaults); a missing named file is an error.
    Relative paths in the file (a SQLite database, ``outbox_path``) are relative to
    the file's directory; ``database`` (``--db``) and ``$CRM_DATABASE_URL`` are
    taken as given, relative to the current directory.
    """
    env = os.environ if env is None else env
    explicit = path or env.get("CRM_CONFIG")
    file = Path(explicit) if explicit else Path(DEFAULT_PATH)
    source: Path | None = file  # the file read, None when there is none
    raw: dict[str, Any] = {}
    if file.is_file():
        raw = read_toml(file)
    elif file.exists():
        raise ConfigError(f"{file}: is not a file; expected a crm.toml")
    elif explicit:
        raise ConfigError(f"{file}: configuration file not found")
    else:
        source = None
    return from_dict(raw, path=source, database=database, overrides=overrides, env=env)


def read_toml(file: Path) -> dict[str, Any]:
    """Parse ``file`` as TOML; every failure is one line naming the file (and the
    line, where it is known)."""
    try:
        data = file.read_bytes()
    except OSError as e:
        raise ConfigError(f"{file}: cannot read: {e.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigError(
            f"{file}: line {line}: not UTF-8 text (byte {data[e.start]:#04x}); save it as UTF-8"
        ) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{file}: not valid TOML: {e}") from None
    except RecursionError:  # tomllib recurses into nested inline arrays and tables
        raise ConfigError(
            f"{file}: nested too deeply to read; a crm.toml needs at most {MAX_DEPTH} levels"
        ) from None
    _check_depth(doc, file)
    return doc


def _check_depth(doc: dict[str, Any], file: Path | str) -> None:
    """Refuse documents nested deeper than :data:`MAX_DEPTH` (walked without recursion,
    so validation and copying never meet a document too deep for them)."""
    stack: list[tuple[Any, int, str]] = [(doc, 0, "")]
    while stack:
        value, depth, key = stack.pop()
        if depth > MAX_DEPTH:
            key = key if len(key) <= 60 else key[:60] + "..."
            raise ConfigError(
                f"{file}: {key}: nested more than {MAX_DEPTH} levels deep; "
                "a crm.toml needs far fewer"
            )
        if isinstance(value, dict):
            stack.extend((v, depth + 1, f"{key}.{k}" if key else str(k)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, depth + 1, f"{key}[{i}]") for i, v in enumerate(value))


def from_dict(
    raw: dict[str, Any],
    *,
    path: Path | None = None,
    database: str | None = None,
    overrides: dict[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Build a Config from an already-parsed document (used by tests and ``load``)."""
    env = {} if env is None else env
    where = str(path) if path else "configuration"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table at the top level")
    unknown = set(raw) - {"crm", "plugins", "web", "channels", "messages", *ops_settings.SECTIONS}
    if unknown:
        raise ConfigError(
            f"{where}: unknown top-level table(s) {sorted(unknown)}; use [crm], [web], "
            "[plugins.NAME], [channels.NAME], [messages], [jobs.NAME] and [outbox]"
        )
    if not isinstance(raw.get("crm", {}), dict):
        raise ConfigError(f"{where}: crm: expected a table")
    _check_depth(raw, where)
    core = dict(raw.get("crm", {}))
    core.update(overrides or {})
    given_database = database or env.get("CRM_DATABASE_URL") or None
    if given_database:
        core["database"] = given_database
    try:
        core = jsonschemas.validate(core, CORE_SCHEMA, where=where, prefix="crm")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if given_database:
        dburl.parse(core["database"], where="database")
    else:
        dburl.parse(core["database"], where=f"{where}: crm.database")
        if path is not None:  # the file's own paths are relative to the file
            core["database"] = dburl.resolve_sqlite(core["database"], path.parent)
    if path is not None:
        core["outbox_path"] = str(path.parent / Path(core["outbox_path"]).expanduser())
    # a role defined in the file replaces the default of that name; the others stay
    core["roles"] = {**copy.deepcopy(DEFAULT_ROLES), **core["roles"]}
    _check_lifecycle(core["lifecycle"], where)
    sections.check(core, where)
    _check_time(core, where)
    plugins = raw.get("plugins", {})
    if not isinstance(plugins, dict) or not all(isinstance(v, dict) for v in plugins.values()):
        raise ConfigError(f"{where}: plugins: expected [plugins.NAME] tables")
    from crmcore.channels import settings as channel_settings

    web = raw.get("web", {})
    if not isinstance(web, dict):
        raise ConfigError(f"{where}: web: expected a table")
    return Config(
        path=path,
        core=core,
        plugins=dict(plugins),
        channels=channel_settings.validate_channels(raw.get("channels", {}), where),
        messages=channel_settings.validate_messages(raw.get("messages", {}), where),
        jobs=ops_settings.job_settings(raw.get("jobs"), where),
        outbox=ops_settings.outbox_settings(raw.get("outbox"), core, where),
        web=dict(web),
    )


def require_database_file(cfg: Config) -> None:
    """Refuse to open a SQLite database whose file does not exist (connecting would
    silently create an empty one): say how to create it."""
    path = dburl.sqlite_path(cfg.database)
    if path is not None and not path.exists():
        raise ConfigError(
            f"database file {path} does not exist (database of {cfg.where}); "
            "create it with `crm init` or `crm db upgrade`"
        )


def check_role_permissions(cfg: Config, known: Iterable[str]) -> None:
    """Every permission a configured role grants must be one that exists (the
    core's or one an enabled plugin declares): a misspelt name would otherwise
    silently grant nothing."""
    known = list(dict.fromkeys(known))
    for role, spec in cfg.core["roles"].items():
        for name in spec.get("permissions", ()):
            if name not in known:
                raise ConfigError(
                    f"{cfg.where}: crm.roles.{role}.permissions: unknown permission {name!r}; "
                    f"known permissions: {', '.join(known)}"
                )


def _check_time(core: dict[str, Any], where: str) -> None:
    from crmcore.clock import fixed_time, load_zone

    try:
        if core["timezone"] is not None:
            load_zone(core["timezone"])
    except ValueError as e:
        raise ConfigError(f"{where}: crm.timezone: {e}") from None
    try:
        if core["clock"] is not None:
            fixed_time(core["clock"], core["timezone"])
    except ValueError as e:
        raise ConfigError(f"{where}: crm.clock: {e}") from None


def _check_lifecycle(lc: dict[str, Any], where: str) -> None:
    stages = lc["stages"]
    if lc["initial"] not in stages:
        raise ConfigError(
            f"{where}: crm.lifecycle.initial: {lc['initial']!r} is not one of the stages {stages}"
        )
    for src, dests in lc["transitions"].items():
        for s in (src, *dests):
            if s not in stages:
                raise ConfigError(
                    f"{where}: crm.lifecycle.transitions.{src}: unknown stage {s!r}; stages are {stages}"
                )


def render_default(database: str, plugins: list[str]) -> str:
    """The crm.toml that ``crm init`` writes."""
    # TOML basic strings take JSON's escapes: any URL or name is written verbatim
    names = ", ".join(json.dumps(p, ensure_ascii=False) for p in plugins)
    return (
        "# crmcore configuration; see README.md, 'Configuration reference'.\n"
        "[crm]\n"
        f"database = {json.dumps(database, ensure_ascii=False)}\n"
        f"plugins = [{names}]\n"
        "# The principal CLI commands act as when --as / CRM_AS is not given.\n"
        'default_principal = "admin"\n'
    )
