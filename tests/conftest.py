"""Shared fixtures: real servers (redis), the Asterisk stand-in with contract checks."""

pytest_plugins = ["tests.fixtures.servers", "tests.fixtures.pbx", "tests.fixtures.app", "tests.fixtures.postgres",
                  "tests.fixtures.watchdog", "tests.fixtures.real_asterisk"]
