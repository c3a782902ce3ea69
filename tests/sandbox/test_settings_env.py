"""A sandbox's settings, handed to a `ccm` child process as environment variables, read back the same."""

from __future__ import annotations

import pytest

from adapters.quickbooks import sandbox as qbo_sandbox
from adapters.quickbooks.settings import quickbooks_settings
from adapters.xero import sandbox as xero_sandbox
from adapters.xero.settings import xero_settings
from connector.config import load_settings
from tests import clock


@pytest.mark.parametrize("limits", [True, False])
def test_quickbooks_env_reads_back_as_the_sandbox_settings(limits: bool) -> None:
    handle = qbo_sandbox.start(seed=2, size="demo", clock=clock.sandbox_clock(), limits=limits)
    try:
        env = handle.env()
        assert env["CCM_QUICKBOOKS__PACING"] == ("true" if limits else "false")
        read = quickbooks_settings(load_settings(None, env))
        assert read == handle.settings()
        assert read.pacing is limits
        assert read.token_url == handle.token_url and read.ca_bundle == handle.ca_path
    finally:
        handle.stop()


def test_xero_env_reads_back_as_the_sandbox_settings() -> None:
    handle = xero_sandbox.start(seed=2, size="demo", clock=clock.sandbox_clock(), limits=False)
    try:
        env = handle.env()
        assert "CCM_XERO__PACING" not in env  # unset: the default, which engages only once Xero counts
        read = xero_settings(load_settings(None, env))
        assert read == handle.settings()
        assert read.api_url == read.login_url == handle.base_url
    finally:
        handle.stop()
