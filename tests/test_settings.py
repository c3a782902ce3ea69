"""Settings: ccm.toml with CCM_* variables over it, validated at start with one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.config import ConfigError, config_path, load_settings


def test_defaults_put_the_database_in_the_data_dir(tmp_path):
    settings = load_settings(None, {"CCM_HOME": str(tmp_path)})
    assert settings.data_dir == tmp_path
    assert settings.db_url == f"sqlite:///{tmp_path / 'ccm.db'}"
    assert settings.sync.overlap_seconds == 300


def test_environment_overrides_the_file(tmp_path):
    path = tmp_path / "ccm.toml"
    path.write_text('database_url = "sqlite:///a.db"\n[log]\nlevel = "info"\n[sync]\noverlap_seconds = 60\n')
    settings = load_settings(path, {"CCM_SYNC__OVERLAP_SECONDS": "90", "CCM_DATABASE_URL": "sqlite:///b.db"})
    assert settings.sync.overlap_seconds == 90
    assert settings.log.level == "info"
    assert settings.db_url == "sqlite:///b.db"


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[sync]\noverlap_seconds = -1\n", {}, "{path}: sync.overlap_seconds: must be at least 0 (got -1)"),
        ("[sink]\nx = 1\n", {}, "{path}: sink: unknown setting"),
        (
            '[log]\nlevel = "loud"\n',
            {},
            "{path}: log.level: must be one of debug, info, warning or error (got 'loud')",
        ),
        ("", {"CCM_LOG__FORMAT": "xml"}, "CCM_LOG__FORMAT: must be one of console or json (got 'xml')"),
        (
            "",
            {"CCM_SYNC__OVERLAP_SECONDS": "999999"},
            "CCM_SYNC__OVERLAP_SECONDS: must be at most 86400 (got '999999')",
        ),
    ],
)
def test_bad_settings_name_where_and_what(tmp_path, text, env, message):
    path = tmp_path / "ccm.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_settings(path, env)
    assert str(exc.value) == message.format(path=path)


def test_a_missing_or_broken_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.toml: cannot read: No such file"):
        load_settings(tmp_path / "nope.toml", {})
    broken = tmp_path / "broken.toml"
    broken.write_text("[sync\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(broken, {})
    assert "\n" not in str(exc.value) and str(exc.value).startswith(f"{broken}: ")


def test_the_file_is_found_by_flag_then_environment_then_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert config_path(None, {}) is None
    (tmp_path / "ccm.toml").write_text("")
    assert config_path(None, {}) == Path("ccm.toml")
    assert config_path(None, {"CCM_CONFIG": "/etc/ccm.toml"}) == Path("/etc/ccm.toml")
    assert config_path(Path("x.toml"), {"CCM_CONFIG": "/etc/ccm.toml"}) == Path("x.toml")


def test_the_example_settings_file_names_every_setting_with_its_default():
    import re
    import tomllib

    from connector.config import Settings

    example = Path(__file__).parents[1] / "deploy" / "ccm.example.toml"
    text = example.read_text()
    loaded = tomllib.loads(text)
    defaults = Settings().model_dump()
    for section, fields in defaults.items():
        if not isinstance(fields, dict):
            assert re.search(rf"^#? ?{section} = ", text, re.M), f"{section} is not in the example"
            continue
        for key, value in fields.items():
            shown = loaded.get(section, {})
            if key in shown:
                assert shown[key] == (str(value) if isinstance(value, Path) else value), f"{section}.{key}"
            else:
                assert re.search(rf"^# ?{key} = ", text, re.M), f"{section}.{key} is not in the example"


def test_the_tests_and_benches_own_variables_are_not_settings(tmp_path):
    """CI exports CCM_TEST_DATE_SHIFT_DAYS and friends: every ccm the tests start must still read its settings,
    while a misspelt setting is still refused."""
    env = {
        "CCM_HOME": str(tmp_path),
        "CCM_TEST_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "CCM_TEST_DATE_SHIFT_DAYS": "365",
        "CCM_BENCH_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "CCM_XERO_SPECS": str(tmp_path),
    }
    assert load_settings(None, env).database_url is None
    with pytest.raises(ConfigError, match="CCM_TESTS: unknown setting"):
        load_settings(None, env | {"CCM_TESTS": "1"})
