"""What every end-to-end test on the sandboxes shares: a module's `side` (the running sandbox of the ledger
at hand, defined by each module for the firm it needs) gives ccm's settings pointed at it and at the test's
SMTP server."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.config import Settings
from tests.e2e.sandboxes import Side, settings_for
from tests.smtp import Inbox


@pytest.fixture
def settings(side: Side, tmp_path: Path, inbox: Inbox) -> Settings:
    return settings_for(side, tmp_path / "data", inbox)
