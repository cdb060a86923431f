"""Shared helpers for the core's tests (the fixtures come from crmcore.testing)."""

from __future__ import annotations

import datetime as dt

import pytest

from crmcore import Attribute, PluginInfo, hookimpl


class Recorder:
    """A test plugin that records every event hook it receives, in order."""

    def __init__(self, name: str = "recorder") -> None:
        self.name = name
        self.calls: list[tuple[str, object]] = []

    @hookimpl
    def crm_plugin_info(self):
        return PluginInfo(version="1.0", description="records hook calls")

    @hookimpl
    def crm_customer_created(self, crm, customer):
        self.calls.append(("customer_created", customer.id))

    @hookimpl
    def crm_validate_customer(self, crm, customer, before):
        self.calls.append(("validate_customer", before is None))

    @hookimpl
    def crm_customer_updated(self, crm, before, after):
        self.calls.append(("customer_updated", (before.name, after.name)))

    @hookimpl
    def crm_validate_interaction(self, crm, interaction):
        self.calls.append(("validate_interaction", interaction.id))

    @hookimpl
    def crm_validate_transaction(self, crm, transaction):
        self.calls.append(("validate_transaction", transaction.id))

    @hookimpl
    def crm_ticket_opened(self, crm, ticket):
        self.calls.append(("ticket_opened", ticket.state))

    @hookimpl
    def crm_analytics_computed(self, crm, name, as_of, summary):
        self.calls.append(("analytics_computed", name))

    @hookimpl
    def crm_stage_changed(self, crm, customer, change):
        self.calls.append(("stage_changed", (change.from_stage, change.to_stage)))

    @hookimpl
    def crm_interaction_recorded(self, crm, interaction):
        self.calls.append(("interaction_recorded", interaction.kind))

    @hookimpl
    def crm_transaction_recorded(self, crm, transaction):
        self.calls.append(("transaction_recorded", transaction.amount_cents))

    @hookimpl
    def crm_ticket_moved(self, crm, ticket, move):
        self.calls.append(("ticket_moved", (move.from_state, move.to_state)))

    @hookimpl
    def crm_relationship_changed(self, crm, relationship, action):
        self.calls.append(("relationship_changed", action))


class Loyalty:
    """A small plugin with an attribute, a config schema and a validation rule."""

    @hookimpl
    def crm_plugin_info(self):
        return PluginInfo(version="0.1")

    @hookimpl
    def crm_config_schema(self):
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": {"max_level": {"type": "integer", "minimum": 1, "default": 3}},
        }

    @hookimpl
    def crm_customer_attributes(self):
        return [
            Attribute(name="loyalty.level", schema={"type": "integer", "minimum": 0}),
            Attribute(name="loyalty.id_number", schema={"type": "string"}, pii=True),
        ]

    @hookimpl
    def crm_validate_customer(self, crm, customer, before):
        from crmcore import ValidationError

        level = customer.attributes.get("loyalty.level")
        if level is not None and level > crm.plugin_config("loyalty")["max_level"]:
            raise ValidationError(f"loyalty.level {level} is above the maximum")


@pytest.fixture
def at() -> dt.datetime:
    return dt.datetime(2026, 1, 5, 9, 0)
