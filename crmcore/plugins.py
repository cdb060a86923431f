"""The plugin manager: find installed plugins, enable exactly those the config
names, order them by ``requires``, validate their config, and record who owns
every declared name.

Nothing happens at import time: :func:`build` does the work when a CRM is made.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import pluggy

from crmcore import hooks, jsonschemas
from crmcore.config import Config
from crmcore.errors import ConfigError, ConfigWarning, PluginError
from crmcore.registry import PluginInfo

ENTRY_POINT_GROUP = "crmcore.plugins"
# a plugin's command names and objects, so that `crm --help` can list them unimported
COMMANDS_ENTRY_POINT_GROUP = "crmcore.commands"
CORE = "core"


def installed() -> dict[str, importlib.metadata.EntryPoint]:
    """Every plugin installed in this environment, by entry-point name."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return found


def _load(name: str, ep: importlib.metadata.EntryPoint) -> object:
    try:
        return ep.load()
    except Exception as e:  # a broken plugin must fail with its name and the cause
        raise PluginError(
            f"plugin {name!r} ({ep.value}) failed to load: {type(e).__name__}: {e}"
        ) from e


def _call_one(plugin: object, hook: str, default: Any = None) -> Any:
    fn = getattr(plugin, hook, None)
    return fn() if callable(fn) else default


def plugin_info(plugin: object) -> PluginInfo:
    info = _call_one(plugin, "crm_plugin_info", PluginInfo())
    if not isinstance(info, PluginInfo):
        raise PluginError(f"crm_plugin_info of {plugin!r} must return crmcore.PluginInfo")
    return info


def resolve_order(enabled: Iterable[str], infos: Mapping[str, PluginInfo]) -> list[str]:
    """Enabled plugins in dependency order (required ones first).

    A requirement that is not enabled or not installed, or a cycle, is an error
    naming the plugins involved.
    """
    enabled = list(dict.fromkeys(enabled))
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = path[path.index(name) :] + [name]
            raise PluginError(f"plugins require each other in a cycle: {' -> '.join(cycle)}")
        state[name] = "visiting"
        for req in infos[name].requires:
            if req not in infos:
                raise PluginError(f"plugin {name!r} requires {req!r}, which is not installed")
            if req not in enabled:
                raise PluginError(
                    f"plugin {name!r} requires {req!r}; add it to [crm] plugins in the config"
                )
            visit(req, path + [name])
        state[name] = "done"
        order.append(name)

    for name in enabled:
        visit(name, [])
    return order


@attrs.define
class Plugins:
    """The built manager and what the enabled plugins declared."""

    pm: pluggy.PluginManager
    order: list[str]  # enabled plugins, dependency order
    infos: dict[str, PluginInfo]
    configs: dict[str, dict[str, Any]]
    owners: dict[tuple[str, str], str] = attrs.field(factory=dict)  # (kind, name) -> plugin
    declared: dict[str, dict[str, Any]] = attrs.field(factory=dict)  # kind -> name -> object

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def claim(self, kind: str, name: str, owner: str, obj: Any) -> None:
        """Record that ``owner`` declared ``name`` of ``kind``; a second owner is an error."""
        key = (kind, name)
        if key in self.owners and self.owners[key] != owner:
            raise PluginError(
                f"{kind} {name!r} is declared by both {self.owners[key]!r} and {owner!r}"
            )
        self.owners[key] = owner
        self.declared.setdefault(kind, {})[name] = obj

    def each(self, hook: str) -> list[tuple[str, Any]]:
        """Call a registration hook per plugin; (plugin name, result) pairs."""
        out = []
        for impl in reversed(getattr(self.pm.hook, hook).get_hookimpls()):
            out.append((impl.plugin_name, impl.function()))
        return out

    def implementers(self, hook: str) -> list[str]:
        """Plugin names implementing ``hook``, in call order."""
        return [i.plugin_name for i in reversed(getattr(self.pm.hook, hook).get_hookimpls())]


def build(
    config: Config,
    *,
    extra: Mapping[str, object] | None = None,
) -> Plugins:
    """Build the plugin manager for ``config``.

    :param extra: plugins given as objects (name -> module/object), e.g. by tests;
        they count as installed but are still enabled only if the config names them.
    """
    from crmcore import defaults

    available: dict[str, object] = {}
    eps = installed()
    extra = dict(extra or {})
    wanted = list(config.enabled)
    unknown = [n for n in wanted if n not in eps and n not in extra]
    if unknown:
        have = sorted(set(eps) | set(extra)) or ["(none)"]
        raise PluginError(
            f"{config.where}: crm.plugins names {', '.join(map(repr, unknown))}, which "
            f"{'is' if len(unknown) == 1 else 'are'} not installed; installed: {', '.join(have)}"
        )
    # Load what is enabled plus anything it requires (transitively), nothing else.
    infos: dict[str, PluginInfo] = {}
    queue = list(wanted)
    while queue:
        name = queue.pop()
        if name in available:
            continue
        if name in extra:
            available[name] = extra[name]
        elif name in eps:
            available[name] = _load(name, eps[name])
        else:
            continue
        infos[name] = plugin_info(available[name])
        queue.extend(infos[name].requires)
    order = resolve_order(wanted, infos)

    pm = pluggy.PluginManager(hooks.PROJECT)
    for module in hooks.SPEC_MODULES:
        pm.add_hookspecs(module)
    pm.register(defaults, name=CORE)
    # pluggy calls the last registered first; register dependants first so a
    # required plugin's hooks run before those of the plugins that need it.
    for name in reversed(order):
        try:
            pm.register(available[name], name=name)
        except pluggy.PluginValidationError as e:
            raise PluginError(f"plugin {name!r}: {e}") from None
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as e:
        raise PluginError(f"unknown hook (misspelt?): {e}") from None

    configs: dict[str, dict[str, Any]] = {}
    for name in order:
        schema = _call_one(available[name], "crm_config_schema", None) or {
            "type": "object",
            "additionalProperties": False,
        }
        section = config.plugins.get(name, {})
        try:
            configs[name] = jsonschemas.validate(
                section, schema, where=config.where, prefix=f"plugins.{name}"
            )
        except ValueError as e:
            raise ConfigError(str(e)) from None
        for note in jsonschemas.dropped_defaults(section, schema, prefix=f"plugins.{name}"):
            warnings.warn(f"{config.where}: {note}", ConfigWarning, stacklevel=2)
    from crmcore.access import known_permissions
    from crmcore.config import check_role_permissions

    declared = [p for name in order for p in infos[name].permissions]
    check_role_permissions(config, known_permissions(declared))
    stray = set(config.plugins) - set(order)
    if stray:
        raise ConfigError(
            f"{config.where}: [plugins.{sorted(stray)[0]}] is configured but the plugin is "
            "not enabled in crm.plugins"
        )
    plugins = Plugins(pm=pm, order=order, infos=infos, configs=configs)
    _claim_declarations(plugins)
    _check_listed_commands(plugins, {n: ep for n, ep in eps.items() if n not in extra})
    return plugins


def _claim_declarations(plugins: Plugins) -> None:
    from crmcore.schema import CORE_TABLES

    for t in CORE_TABLES:
        plugins.claim("table", t, CORE, None)
    for kind, hook in [
        ("attribute", "crm_customer_attributes"),
        ("table", "crm_tables"),
        ("command", "crm_cli_commands"),
        ("job", "crm_jobs"),
        ("template", "crm_message_templates"),
        ("channel", "crm_delivery_channels"),
        ("workflow", "crm_ticket_workflows"),
    ]:
        for owner, items in plugins.each(hook):
            for obj in items or ():
                plugins.claim(kind, _name_of(obj), owner, obj)


def _check_listed_commands(
    plugins: Plugins, eps: Mapping[str, importlib.metadata.EntryPoint]
) -> None:
    """A plugin whose distribution lists commands in the ``crmcore.commands`` entry
    points (read by ``crm --help`` instead of importing it) must list exactly the
    commands its ``crm_cli_commands`` declares, each pointing at that command."""
    for name in plugins.order:
        dist = getattr(eps.get(name), "dist", None)
        if dist is None:
            continue
        listed = {e.name: e for e in dist.entry_points if e.group == COMMANDS_ENTRY_POINT_GROUP}
        if not listed:
            continue
        declared = {
            n: plugins.declared["command"][n]
            for (kind, n), owner in plugins.owners.items()
            if kind == "command" and owner == name
        }
        if sorted(listed) != sorted(declared):
            raise PluginError(
                f"plugin {name!r}: its {COMMANDS_ENTRY_POINT_GROUP} entry points name "
                f"{sorted(listed)} but crm_cli_commands declares {sorted(declared)}"
            )
        for command, ep in listed.items():
            if _load(name, ep) is not declared[command]:
                raise PluginError(
                    f"plugin {name!r}: {COMMANDS_ENTRY_POINT_GROUP} entry point {command!r} "
                    f"({ep.value}) is not the command crm_cli_commands declares"
                )


def _name_of(obj: Any) -> str:
    name = getattr(obj, "name", None)
    if not isinstance(name, str):
        raise PluginError(f"declared object {obj!r} has no name")
    return name
