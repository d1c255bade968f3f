"""The features the application is made of, in build order: one line each.

A feature is a package with a ``plugin.py`` (see :mod:`core.plugins`); it may use the shared
clients and the features listed above it. Its own ``[section] enabled`` settings decide
whether it runs.
"""

from __future__ import annotations

import importlib

from core.plugins import Builder, Plugin

FEATURES: tuple[str, ...] = (
    "callrecords",
    "tickets",
    "delivery",
    "accounts",
    "recordings",
    "ivr",
    "queues",
    "agent_desktop",
)


def load_plugins(names: tuple[str, ...] = FEATURES) -> list[Plugin]:
    plugins = []
    for name in names:
        module = importlib.import_module(f"{name}.plugin")
        build: Builder = module.build
        plugins.append(Plugin(name, build))
    return plugins
