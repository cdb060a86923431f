"""The plugin manager: find installed plugins, enable exactly those the config
names, order them by ``requires``, validate their config, and record who owns
every declared name.

Nothing happens at import time: :func:`build` does the work when a CRM is made.

Longer than most modules: start-up is one sequence (find, order, register, validate,
claim) best read top to bottom.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import os
import sys
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import pluggy

from crmcore import hooks, jsonschemas
from crmcore.config import Config
from crmcore.errors import ConfigError, ConfigWarning, CRMError, PluginError
from crmcore.hooks.renamed import CONTRACT_VERSION, RENAMED_HOOKS
from crmcore.registry import PluginInfo

ENTRY_POINT_GROUP = "crmcore.plugins"
# a plugin's command names and objects, so that `crm --help` can list them unimported
COMMANDS_ENTRY_POINT_GROUP = "crmcore.commands"
CORE = "core"
# CRM_TRACE_PLUGINS=1: one line on stderr per hook call, naming the plugins that answered
TRACE_ENV = "CRM_TRACE_PLUGINS"


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


def _manager(*, all_specs: bool) -> pluggy.PluginManager:
    """A plugin manager with the hook specs (all, or only the start-up ones), traced
    when ``CRM_TRACE_PLUGINS=1``."""
    pm = pluggy.PluginManager(hooks.PROJECT)
    for module in hooks.SPEC_MODULES if all_specs else (hooks.setup,):
        pm.add_hookspecs(module)
    if os.environ.get(TRACE_ENV) == "1":
        pm.add_hookcall_monitoring(_trace_before, _trace_after)
    return pm


def _trace_before(hook_name: str, impls: Any, kwargs: Mapping[str, Any]) -> None:
    """Nothing before a call: the line is printed once it is known how it ended."""


def _trace_after(outcome: Any, hook_name: str, impls: Any, kwargs: Mapping[str, Any]) -> None:
    """One line per hook call: the hook, the plugins that answered (in call order)
    and how it ended. Arguments are not printed: they hold personal data."""
    answered = ", ".join(impl.plugin_name for impl in reversed(impls)) or "no plugin"
    error = outcome.exception
    if error is not None:
        ended = f"raised {type(error).__name__}: {_first_line(error)}"
    else:
        result = outcome.get_result()
        count = len(result) if isinstance(result, list) else int(result is not None)
        ended = f"{count} result{'' if count == 1 else 's'}"
    sys.stderr.write(f"trace: {hook_name} answered by {answered}: {ended}\n")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _distribution(ep: importlib.metadata.EntryPoint | None) -> str:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "not from an installed distribution"
    return f"distribution {dist.metadata['Name']} {dist.version}"


def _register(
    pm: pluggy.PluginManager, name: str, plugin: object, ep: importlib.metadata.EntryPoint | None
) -> None:
    """Register ``plugin`` as ``name``; a hook implementation whose arguments do not
    match the spec is an error naming the plugin, on one line."""
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as e:
        raise PluginError(
            f"plugin {name!r} ({_distribution(ep)}): {' '.join(str(e).split())}"
        ) from None


def _call(pm: pluggy.PluginManager, plugin: object, hook: str, **kwargs: Any) -> Any:
    """Call ``hook`` on this one plugin (a real hook call, traced like any other);
    its result, or None when it does not implement the hook or returns None."""
    if not any(impl.plugin is plugin for impl in getattr(pm.hook, hook).get_hookimpls()):
        return None
    others = [p for p in pm.get_plugins() if p is not plugin]
    results = pm.subset_hook_caller(hook, remove_plugins=others)(**kwargs)
    return results[0] if results else None


def _info_of(pm: pluggy.PluginManager, name: str, plugin: object) -> PluginInfo:
    info = _call(pm, plugin, "crm_plugin_info")
    if info is None:
        return PluginInfo()
    if not isinstance(info, PluginInfo):
        raise PluginError(
            f"plugin {name!r}: crm_plugin_info must return crmcore.PluginInfo, "
            f"not {type(info).__name__}"
        )
    return info


def plugin_info(
    plugin: object, name: str = "plugin", ep: importlib.metadata.EntryPoint | None = None
) -> PluginInfo:
    """The plugin's :class:`PluginInfo`, from its ``crm_plugin_info`` hook
    (``PluginInfo()`` when it has none)."""
    pm = _manager(all_specs=False)
    _register(pm, name, plugin, ep)
    return _info_of(pm, name, plugin)


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

    def call(self, name: str, hook: str, **kwargs: Any) -> Any:
        """Call ``hook`` on the plugin ``name`` alone; its result or None."""
        return _call(self.pm, self.pm.get_plugin(name), hook, **kwargs)

    def each(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a registration hook per plugin, in call order; (plugin name, result) pairs."""
        return [(name, self.call(name, hook, **kwargs)) for name in self.implementers(hook)]

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
    entry = {n: ep for n, ep in eps.items() if n not in extra}
    # Load what is enabled plus anything it requires (transitively), nothing else;
    # each plugin's crm_plugin_info is asked on a manager of the start-up hooks.
    discovery = _manager(all_specs=False)
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
        _register(discovery, name, available[name], entry.get(name))
        infos[name] = _info_of(discovery, name, available[name])
        queue.extend(infos[name].requires)
    order = resolve_order(wanted, infos)
    from crmcore import i18n

    for name in order:
        catalogues = infos[name].translations
        if catalogues:
            i18n.register_domain(name, catalogues)

    pm = _manager(all_specs=True)
    pm.register(defaults, name=CORE)
    # pluggy calls the last registered first; register dependants first so a
    # required plugin's hooks run before those of the plugins that need it.
    for name in reversed(order):
        _register(pm, name, available[name], entry.get(name))
        _check_marked(pm, name, available[name], entry.get(name))
    _check_unknown_hooks(pm, entry)

    configs: dict[str, dict[str, Any]] = {}
    for name in order:
        schema = _call(pm, available[name], "crm_config_schema") or {
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
    for name in order:
        _validate_config(pm, name, available[name], configs[name], config.where)
    from crmcore.access import known_permissions
    from crmcore.config import check_role_permissions

    declared = [p for name in order for p in infos[name].permissions]
    check_role_permissions(config, known_permissions(declared))
    for stray in sorted(set(config.plugins) - set(order)):
        warnings.warn(
            f"{config.where}: [plugins.{stray}] is ignored: the plugin is not enabled "
            "in crm.plugins",
            ConfigWarning,
            stacklevel=2,
        )
    plugins = Plugins(pm=pm, order=order, infos=infos, configs=configs)
    _claim_declarations(plugins)
    _check_listed_commands(plugins, entry)
    return plugins


def _check_unknown_hooks(
    pm: pluggy.PluginManager, eps: Mapping[str, importlib.metadata.EntryPoint]
) -> None:
    """A hook implementation without a spec (a misspelt name) is an error naming
    the plugin, its distribution and the nearest hook names; one of a name that
    hook contract v2 replaced names the new name."""
    specs = sorted(n for n, caller in vars(pm.hook).items() if caller.has_spec())
    unknown: dict[str, list[str]] = {}
    for hook_name, caller in sorted(vars(pm.hook).items()):
        if caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if not impl.optionalhook:
                unknown.setdefault(impl.plugin_name, []).append(hook_name)
    for name, names in unknown.items():
        renamed = [n for n in names if n in RENAMED_HOOKS]
        if renamed:
            raise PluginError(
                f"plugin {name!r} ({_distribution(eps.get(name))}) implements "
                + ", ".join(f"{n!r}, renamed {RENAMED_HOOKS[n]!r}" for n in renamed)
                + f" in hook contract v{CONTRACT_VERSION}; rename the implementation "
                "(docs/plugins.md, 'Hook contract v2')"
            )
        hints = [
            f"{n!r} (did you mean {near[0]!r}?)" if near else repr(n)
            for n in names
            for near in [difflib.get_close_matches(n, specs, n=1)]
        ]
        raise PluginError(
            f"plugin {name!r} ({_distribution(eps.get(name))}) implements unknown "
            f"hook{'s' if len(names) > 1 else ''} {', '.join(hints)}; the hooks are "
            "listed in docs/hooks.md"
        )


def _check_marked(
    pm: pluggy.PluginManager, name: str, plugin: object, ep: importlib.metadata.EntryPoint | None
) -> None:
    """A function named like a hook but not marked ``@hookimpl`` would never be
    called: an error naming the plugin, not a silent loss."""
    marker = f"{hooks.PROJECT}_impl"
    unmarked = sorted(
        hook_name
        for hook_name, caller in vars(pm.hook).items()
        if caller.has_spec()
        and callable(getattr(plugin, hook_name, None))
        and not hasattr(getattr(plugin, hook_name), marker)
    )
    if unmarked:
        raise PluginError(
            f"plugin {name!r} ({_distribution(ep)}): {', '.join(unmarked)} "
            f"{'is' if len(unmarked) == 1 else 'are'} not marked @hookimpl "
            "(from crmcore import hookimpl), so it would never be called"
        )


def _validate_config(
    pm: pluggy.PluginManager, name: str, plugin: object, section: dict[str, Any], where: str
) -> None:
    """The plugin's cross-field checks of its section (``crm_validate_config``): an
    error is one line naming the file and the key."""
    try:
        _call(pm, plugin, "crm_validate_config", config=section)
    except CRMError as e:
        text = _first_line(e)
        if not text.startswith(f"plugins.{name}"):
            text = f"plugins.{name}: {text}"
        raise ConfigError(f"{where}: {text}") from None


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
        for owner in plugins.implementers(hook):
            kwargs = (
                {"config": plugins.configs.get(owner, {})}
                if hook == "crm_message_templates"
                else {}
            )
            for obj in plugins.call(owner, hook, **kwargs) or ():
                name = _name_of(obj)
                if kind == "attribute" and not name.startswith(f"{owner}."):
                    raise PluginError(
                        f"plugin {owner!r} declares attribute {name!r}: a plugin's "
                        f"attribute names begin with its name, e.g. '{owner}.{name}'"
                    )
                plugins.claim(kind, name, owner, obj)


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
