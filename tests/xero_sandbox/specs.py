"""Where Xero's OpenAPI specs live for the spec-validation tests, and what to do when they are missing.

The specs sit beside the repository (../shared/reference/xero-openapi/), not in it. In a developer's clone
without them the spec tests skip and say so; on CI (`CI=true`) a missing spec fails them instead, so a
broken checkout can never pass by skipping its checks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

SPECS = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "xero-openapi"


def require_specs(specs: Path = SPECS, env: Mapping[str, str] | None = None) -> None:
    """Skip (or on CI fail) the calling test when the accounting spec is not at `specs`."""
    if (specs / "xero_accounting.yaml").exists():
        return
    reason = f"Xero OpenAPI specs not found at {specs} (they sit beside the repository, not in it)"
    if (os.environ if env is None else env).get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"{reason}; CI=true, so this fails instead of skipping")
    pytest.skip(reason)
