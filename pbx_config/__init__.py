"""Asterisk's configuration for the hotline, installed as operators install it.

``dialplans/`` holds the configuration files with ``{{placeholders}}`` for what differs
between sites (ports, passwords, the carrier, the agents); :mod:`pbx_config.render` fills
them from the settings and the agents' accounts, :mod:`pbx_config.install` writes them with
the prompts and the music on hold into an Asterisk tree (``hotline asterisk install``).
"""
