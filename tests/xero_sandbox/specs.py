"""Where Xero's OpenAPI specs live for the spec-validation tests, and what to do when they are missing.

The specs sit beside the repository (../shared/reference/xero-openapi/), not in it. In a developer's clone
without them the spec tests skip and say so; on CI (`CI=true`) a missing spec fails them instead, so a
broken checkout can never pass by skipping its checks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from tests.conftest import unavailable

_REPO = Path(__file__).resolve().parents[2]


def _specs_folder() -> Path:
    """CCM_XERO_SPECS when set; else ../shared beside the checkout; else /work/shared, where this workplace
    keeps it for checkouts made elsewhere (a CI run's clean checkout)."""
    given = os.environ.get("CCM_XERO_SPECS")
    if given:
        return Path(given)
    candidates = [_REPO.parent / "shared", Path("/work/shared")]
    found = next((c for c in candidates if (c / "reference" / "xero-openapi").is_dir()), candidates[0])
    return found / "reference" / "xero-openapi"


SPECS = _specs_folder()


def require_specs(specs: Path = SPECS, env: Mapping[str, str] | None = None) -> None:
    """Skip (or on CI fail) the calling test when the accounting spec is not at `specs`."""
    if (specs / "xero_accounting.yaml").exists():
        return
    unavailable(f"Xero OpenAPI specs not found at {specs} (they sit beside the repository, not in it)", env)
