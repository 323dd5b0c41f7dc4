"""Fixtures for the operations tests (backup, restore, export, import archive, progress)."""

from ops_support import installations, run, sqlite_template  # noqa: F401
