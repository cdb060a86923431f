"""The pluggy markers. Plugins write ``from crmcore import hookimpl``."""

from __future__ import annotations

import pluggy

PROJECT = "crmcore"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
