"""Shared by the tests that run ccm's QuickBooks adapter against the sandbox: a pinned start instant."""

from __future__ import annotations

from datetime import UTC, datetime

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
