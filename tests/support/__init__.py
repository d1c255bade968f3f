"""Helpers, constants and documents that several test modules (and bench/) share.

A module here holds no fixtures and no tests, so importing it never collects or re-registers
anything: fixtures live in ``tests/fixtures/`` (plugins listed in ``tests/conftest.py``) or in a
folder's ``conftest.py``, and no test module or conftest is ever imported by another module.
"""
