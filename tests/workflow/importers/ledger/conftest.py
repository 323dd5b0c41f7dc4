"""Fixtures shared by the ledger importer's tests: the staff the ledgers name, and the command."""

from __future__ import annotations

from test_ledger_command import import_ledger, staff  # noqa: F401 - fixtures, used by name
