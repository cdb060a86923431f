"""Real delivery channels, configured in crm.toml.

``[channels.NAME] kind = "..."`` builds a :class:`~crmcore.registry.Channel`
named NAME: ``smtp`` (e-mail, :mod:`.smtp`), ``sms_http`` (a generic HTTP SMS
gateway, :mod:`.sms_http`), ``aliyun`` (Alibaba Cloud SMS, :mod:`.aliyun`) or
``nats`` (after-commit events to NATS JetStream, :mod:`.nats`). A plugin's
channel of the same name (``crm_delivery_channels``) replaces the configured
one. Secrets are read from the environment variables the table names, when
``crm outbox send`` starts: a missing one stops it before anything is sent.
See docs/channels.md.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from crmcore.errors import ConfigError

if TYPE_CHECKING:
    from crmcore.clock import Clock
    from crmcore.config import Config
    from crmcore.registry import Channel


@attrs.frozen
class ConfiguredChannels:
    """The channels crm.toml configures: message channels by name, and the event
    streams every after-commit event is published to."""

    by_name: dict[str, Channel]
    event_streams: tuple[Channel, ...]


def secret(
    table: Mapping[str, Any], setting: str, where: str, *, required: bool = True
) -> str | None:
    """The value of the environment variable named by ``table[setting]``."""
    name = table.get(setting)
    if name is None:
        if required:
            raise ConfigError(
                f"{where}.{setting}: name the environment variable holding the secret"
            )
        return None
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"{where}.{setting}: environment variable {name} is not set")
    return value


def utc_clock(clock: Clock, zone: str | None) -> Callable[[], dt.datetime]:
    """The CRM clock's "now" as an aware UTC time (a gateway's request timestamp)."""

    def now() -> dt.datetime:
        local = clock.now()
        if zone is not None:
            from crmcore.clock import load_zone

            return local.replace(tzinfo=load_zone(zone)).astimezone(dt.UTC)
        return local.astimezone(dt.UTC)  # a naive time is the machine's local time

    return now


def build_channels(
    config: Config, clock: Clock, *, replaced: Mapping[str, Channel] | None = None
) -> ConfiguredChannels:
    """Build every ``[channels.NAME]`` but those a plugin's channel of that name
    replaces (``replaced``; a replaced event stream is the plugin's channel)."""
    replaced = replaced or {}
    by_name: dict[str, Channel] = {}
    streams: list[Channel] = []
    now = utc_clock(clock, config.core.get("timezone"))
    for name, table in config.channels.items():
        if name in replaced:
            if table["kind"] == "nats":
                streams.append(replaced[name])
            continue
        where = f"{config.where}: channels.{name}"
        kind = table["kind"]
        if kind == "smtp":
            from crmcore.channels.smtp import SmtpChannel

            by_name[name] = SmtpChannel(name, table, where).channel()
        elif kind == "sms_http":
            from crmcore.channels.sms_http import HttpSmsChannel

            by_name[name] = HttpSmsChannel(name, table, where).channel()
        elif kind == "aliyun":
            from crmcore.channels.aliyun import AliyunSmsChannel

            by_name[name] = AliyunSmsChannel(name, table, where, utc_now=now).channel()
        else:
            from crmcore.channels.nats import NatsEventChannel

            streams.append(NatsEventChannel(name, table).channel())
    return ConfiguredChannels(by_name=by_name, event_streams=tuple(streams))


__all__ = ["ConfiguredChannels", "build_channels", "secret", "utc_clock"]
