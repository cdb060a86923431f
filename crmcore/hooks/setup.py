"""Start-up hooks: what a plugin is and what it declares.

Called once when the CRM is built, outside any transaction, for enabled
plugins only. The core records which plugin returned each name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from crmcore.hooks.markers import hookspec

if TYPE_CHECKING:
    import click
    from sqlalchemy import Table

    from crmcore.registry import Attribute, Channel, Job, PluginInfo, Template, Workflow
    from crmcore.service import CRM


@hookspec
def crm_plugin_info() -> PluginInfo:
    """Return the plugin's :class:`~crmcore.registry.PluginInfo` (version, ``requires``,
    description, permissions).

    Called while the manager resolves what to enable, for each enabled plugin and
    each plugin it requires, before the CRM's manager is built (and by ``crm
    plugins list`` for every installed plugin). ``requires`` names other plugins
    (entry-point names) that must be enabled too and are set up first; a missing
    or cyclic requirement is a start-up error naming them. Without this hook a
    plugin has ``PluginInfo()``: version ``"0"``, no requirements.
    """


@hookspec
def crm_config_schema() -> dict[str, Any]:
    """Return the JSON Schema of the plugin's section ``[plugins.NAME]`` in crm.toml.

    Called at start-up for each enabled plugin; the section (``{}`` when absent) is
    validated against it and the error names the file, key and expectation. Fill
    defaults in the schema with ``"default"``: the core applies them, so
    ``crm.plugin_config(NAME)`` always holds every key. Without this hook the
    section must be empty. A section ``[plugins.NAME]`` of a plugin that is not
    enabled is ignored with a one-line warning.
    """


@hookspec
def crm_validate_config(config: dict[str, Any]) -> None:
    """Check what the JSON Schema cannot say about the plugin's section (an order,
    a sum, one key depending on another).

    :param config: the plugin's own ``[plugins.NAME]`` section, already valid
        against ``crm_config_schema`` and with its defaults filled in.

    Called at start-up for each enabled plugin, once its section passed the
    schema, so a bad configuration stops every command before anything runs
    rather than the first use of the setting. Raise
    :class:`~crmcore.errors.ConfigError` with one line naming the key, e.g.
    ``plugins.NAME.steps: days must increase``; the core adds the file. The
    return value is ignored.
    """


@hookspec
def crm_customer_attributes() -> Iterable[Attribute]:
    """Return the customer attributes the plugin declares.

    Each :class:`~crmcore.registry.Attribute` has a name and a JSON Schema; the
    customer's attribute document is validated against the merged schema on every
    write. Two plugins declaring one name is a start-up error.
    """


@hookspec
def crm_tables() -> Iterable[Table]:
    """Return the SQLAlchemy ``Table`` objects the plugin owns.

    Build them on a ``MetaData`` of your own. A table that reaches ``customers``
    through its foreign keys (or has a ``customer_id`` column) is customer data:
    the query layer filters it by the acting principal's access; a ``customer_id``
    column is also what merge moves and ``crm plugins purge`` counts. Any other
    table declares its kind, ``info={"crm_kind": "configuration"}`` (changed only
    with the ``configure`` permission; the default), ``"record"`` (shared working
    data) or ``"internal"`` (never read or written by a restricted principal).
    Table names must not clash with the core's or another plugin's.
    """


@hookspec
def crm_migrations() -> str:
    """Return the directory of the plugin's Alembic revision files.

    The directory is one version branch: its first revision has
    ``branch_labels = ("NAME",)``, ``down_revision = None`` and
    ``depends_on = "crmcore_0001"``. ``crm db upgrade`` upgrades the core and each
    enabled plugin's branch only, so enabling a plugin later adds just its tables.
    """


@hookspec
def crm_cli_commands() -> Iterable[click.Command]:
    """Return click commands or groups to add under ``crm``.

    Conventionally one group named after the plugin (``crm retail ...``). The
    command gets the CRM through ``crmcore.cli.pass_crm``. Names must be unique.
    """


@hookspec
def crm_jobs() -> Iterable[Job]:
    """Return the plugin's scheduled jobs (:class:`~crmcore.registry.Job`).

    ``crm jobs run [NAME ...] --at ISO`` runs them as of that time, each in a
    transaction of its own: a job that raises is rolled back alone, reported
    (status ``failed`` with the one-line error, also recorded in ``job_runs``)
    and the other jobs still run; the command then exits 1. A job must be
    idempotent for the same ``at``, so a failed or killed run can be run again.
    """


@hookspec
def crm_message_templates(config: dict[str, Any]) -> Iterable[Template]:
    """Return message templates (:class:`~crmcore.registry.Template`) the plugin
    sends with ``crm.messages.enqueue(template=...)``. Names must be unique.

    :param config: the plugin's validated ``[plugins.NAME]`` section (defaults
        filled in), so a template's text may use the configured settings (a
        store name, a hotline).

    Called once at start-up. A template's ``{placeholders}`` are filled when the
    message is queued (``enqueue_message(..., values=...)``), not when it is
    sent: the outbox holds the final text, and a later change of the template
    or the customer does not change a queued message.
    """


@hookspec
def crm_delivery_channels() -> Iterable[Channel]:
    """Return outbound delivery channels (:class:`~crmcore.registry.Channel`).

    ``crm outbox send`` delivers each queued message through the channel of its
    name, after commit, outside any transaction, by calling
    ``channel.send(message, key)``:

    :param message: the outbox row (:class:`~crmcore.entities.Message`); its
        ``body`` is final: a template's placeholders were filled when the
        message was queued, not at sending.
    :param key: the message's idempotency key, one per message and the same on
        every attempt. Give it to the gateway as its correlation id (or skip a
        key you already delivered): delivery is at-least-once, since a sender
        stopped after the call but before recording the result tries again.

    Raise to report a failure: the attempt is recorded with its error and
    retried by the next run, up to ``outbox_max_attempts``. Each message goes
    queued -> sending (attempt counted, committed before the call) -> sent or
    failed. The core's ``log`` channel is the fallback for every message whose
    channel nobody provides: a file sink that writes one line per key.
    """


@hookspec
def crm_ticket_workflows() -> Iterable[Workflow]:
    """Return ticket workflows (:class:`~crmcore.registry.Workflow`) the plugin adds.

    A ticket opened with ``workflow=NAME`` moves through its states. The core's
    ``default`` workflow is verify -> review -> rectify -> revisit -> archive.
    """


@hookspec
def crm_demo(crm: CRM, command_prefix: str) -> str | None:
    """Load the plugin's sample data into the demo database.

    :param crm: the CRM of the demo (the system principal, clock fixed at the
        demo's date, which the demo's crm.toml keeps for later commands), bound
        to one transaction per plugin.
    :param command_prefix: the command that reaches the demo database from where
        ``crm demo`` ran, e.g. ``crm --config crm-demo/crm.toml``. Begin every
        command you suggest with it, so that it works when pasted.

    Called by ``crm demo`` once per enabled plugin, in dependency order. Return
    a short text to print (what a person would want to see), or None.
    """
