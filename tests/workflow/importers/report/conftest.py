"""Fixtures for the report importer's tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_documents import REPORT


@pytest.fixture
def report_file(tmp_path) -> Path:
    """The rectification report ``REPORT`` as a UTF-8 .txt file."""
    path = tmp_path / "整改情况报告.txt"
    path.write_text(REPORT, encoding="utf-8")
    return path
