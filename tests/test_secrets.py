"""Secrets never reach a log line or an error message."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from connector.config import ConfigError, load_settings
from connector.logs import configure
from connector.redact import REDACTED, register_secret, scrub
from connector.store.engine import DatabaseUrlError, normalise_url


@pytest.fixture(autouse=True)
def _restore_logging():
    yield
    configure("warning")


def test_secret_keys_and_registered_values_are_scrubbed_from_structured_logs(capsys):
    configure("info", "json")
    register_secret("rt-9f8e7d6c5b4a")
    structlog.get_logger("t").info(
        "token.refreshed", access_token="eyJhbGciOi.secret.part", client_secret="s3cr3t-value",
        detail="old refresh token rt-9f8e7d6c5b4a rotated", headers={"Authorization": "Bearer abc.def"},
        tenant="acme",
    )  # fmt: skip
    line = capsys.readouterr().err.strip()
    event = json.loads(line)
    assert event["access_token"] == REDACTED
    assert event["client_secret"] == REDACTED
    assert event["headers"]["Authorization"] == REDACTED
    assert event["detail"] == f"old refresh token {REDACTED} rotated"
    assert event["tenant"] == "acme"
    for secret in ("eyJhbGciOi", "s3cr3t-value", "rt-9f8e7d6c5b4a", "abc.def"):
        assert secret not in line


def test_standard_library_loggers_are_scrubbed_too(capsys):
    configure("info")
    register_secret("qbo-refresh-123456")
    logging.getLogger("urllib3").warning("retrying with refresh_token=%s", "qbo-refresh-123456")
    logging.getLogger("requests").warning("header Authorization: Bearer zzz.yyy.xxx")
    err = capsys.readouterr().err
    assert "qbo-refresh-123456" not in err and "zzz.yyy.xxx" not in err
    assert err.count(REDACTED) == 2


def test_database_passwords_never_appear_in_messages():
    assert (
        scrub("postgresql://ccm:hunter2@db:5432/ccm failed")
        == f"postgresql://ccm:{REDACTED}@db:5432/ccm failed"
    )
    with pytest.raises(DatabaseUrlError) as exc:
        normalise_url("mysql://ccm:hunter2@db/ccm")
    assert "hunter2" not in str(exc.value)


def test_setting_errors_do_not_echo_secret_values():
    with pytest.raises(ConfigError) as exc:
        load_settings(None, {"CCM_DATABASE_URL": "postgresql://u:hunter2@h/db", "CCM_LOG__SECRET_THING": "x"})
    assert "hunter2" not in str(exc.value)
    assert str(exc.value) == "CCM_LOG__SECRET_THING: unknown setting"
