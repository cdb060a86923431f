"""One exception hierarchy for crmcore.

Every error a user can cause is a :class:`CRMError`; its message is one line that
names the thing and the fix. The CLI turns it into exit status 1 and that line on
stderr, never a traceback.
"""

from __future__ import annotations


class CRMError(Exception):
    """Base of every error a user or a plugin author can cause."""


class ConfigError(CRMError):
    """The configuration file or a plugin's config section is invalid."""


class PluginError(CRMError):
    """A plugin cannot be found, loaded, ordered or registered."""


class SchemaError(CRMError):
    """The database's schema is not the one the code and the enabled plugins need
    (migrations not applied: ``crm db upgrade``)."""


class ValidationError(CRMError):
    """Input refused before anything was written. Hooks raise it to veto a write."""


class NotFound(CRMError):
    """A referenced customer, staff member, ticket or other record does not exist."""


class TransitionError(CRMError):
    """A lifecycle or ticket state change that the configured workflow forbids."""


class AccessDenied(CRMError):
    """The acting principal may not see or change the record."""


class Conflict(CRMError):
    """The operation clashes with existing data (a duplicate, a concurrent write)."""


class RetryableError(CRMError):
    """The database was busy (locked by another writer); the operation can be retried."""


class MissingExtra(CRMError):
    """An optional dependency (an extra of crmcore) that a feature needs is not installed."""


class ConfigWarning(UserWarning):
    """The configuration loads but probably does not say what was meant (a list
    that replaced a default, dropping entries). The CLI prints it as one line."""
