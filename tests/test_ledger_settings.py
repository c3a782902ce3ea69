"""Each ledger's settings are its adapter's model, read from `[ledgers.<name>]`; `[<name>]` (the spelling older
ccm.toml files use) is the same section, and a bad value stops ccm with one line naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.quickbooks.settings import QuickBooksSettings, quickbooks_settings
from adapters.xero.settings import XeroSettings, xero_settings
from connector.config import ConfigError, Settings, load_settings


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Settings:
    toml = tmp_path / "ccm.toml"
    toml.write_text(text)
    return load_settings(toml, {"CCM_HOME": str(tmp_path), **(env or {})})


def test_both_spellings_are_the_same_section_and_the_new_one_wins_a_key_given_twice(tmp_path: Path) -> None:
    assert xero_settings(load(tmp_path, '[xero]\nclient_id = "old"\n')).client_id == "old"
    assert xero_settings(load(tmp_path, '[ledgers.xero]\nclient_id = "new"\n')).client_id == "new"
    both = load(tmp_path, '[xero]\nclient_id = "old"\nday_limit = 1000\n[ledgers.xero]\nclient_id = "new"\n')
    assert (xero_settings(both).client_id, xero_settings(both).day_limit) == ("new", 1000)
    assert isinstance(both.ledger("xero"), XeroSettings)


def test_sections_not_given_are_the_models_defaults(tmp_path: Path) -> None:
    settings = load(tmp_path, "")
    assert settings.ledger("quickbooks") == QuickBooksSettings()
    assert quickbooks_settings(settings).minor_version == 75


def test_the_environment_sets_either_spelling(tmp_path: Path) -> None:
    settings = load(tmp_path, "", {"CCM_XERO__CLIENT_ID": "a", "CCM_LEDGERS__QUICKBOOKS__CLIENT_ID": "b"})
    assert (xero_settings(settings).client_id, quickbooks_settings(settings).client_id) == ("a", "b")


@pytest.mark.parametrize(
    ("text", "env", "said"),
    [
        ("[xero]\nday_limit = 0\n", {}, "{toml}: xero.day_limit: must be at least 1 (got 0)"),
        ("[ledgers.xero]\nday_limit = 0\n", {}, "{toml}: ledgers.xero.day_limit: must be at least 1 (got 0)"),
        ("[ledgers.xero]\nnope = 1\n", {}, "{toml}: ledgers.xero.nope: unknown setting (got 1)"),
        (
            "[quickbooks]\nminor_version = 3\n",
            {},
            "{toml}: quickbooks.minor_version: must be at least 75 (got 3)",
        ),
        (
            "[ledgers.sage]\nx = 1\n",
            {},
            "{toml}: ledgers.sage: no adapter registered for this ledger (known: ",
        ),
        ("[sage]\nx = 1\n", {}, "{toml}: sage: unknown setting"),
        ("", {"CCM_XERO__DAY_LIMIT": "0"}, "CCM_XERO__DAY_LIMIT: must be at least 1 (got '0')"),
        (
            "",
            {"CCM_LEDGERS__XERO__DAY_LIMIT": "0"},
            "CCM_LEDGERS__XERO__DAY_LIMIT: must be at least 1 (got '0')",
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_where_it_came_from(
    tmp_path: Path, text: str, env: dict[str, str], said: str
) -> None:
    with pytest.raises(ConfigError) as bad:
        load(tmp_path, text, env)
    assert str(bad.value).startswith(said.format(toml=tmp_path / "ccm.toml")), str(bad.value)
    assert "\n" not in str(bad.value)


def test_settings_made_in_code_take_either_spelling_and_a_model_or_a_table() -> None:
    """What a ccm.toml gives, given in code: the typed spelling is `ledgers={"xero": XeroSettings(...)}`."""
    assert xero_settings(Settings(xero=XeroSettings(client_id="z"))).client_id == "z"  # type: ignore[call-arg]
    assert xero_settings(Settings(ledgers={"xero": {"client_id": "y"}})).client_id == "y"  # type: ignore[dict-item]
    with pytest.raises(ValueError, match=r"xero\.day_limit: must be at least 1"):
        Settings(ledgers={"xero": {"day_limit": 0}})  # type: ignore[dict-item]
    with pytest.raises(AttributeError):
        _ = Settings().no_such_setting  # type: ignore[attr-defined]


def test_the_example_settings_file_names_every_ledger_setting_with_its_default() -> None:
    import re
    import tomllib

    from connector import ledger as registry

    example = Path(__file__).parents[1] / "deploy" / "ccm.example.toml"
    text = example.read_text()
    shown = tomllib.loads(text)["ledgers"]
    for name in ("xero", "quickbooks"):  # the shipped ledgers
        model = registry.get(name).settings
        assert model is not None
        for key, value in model().model_dump().items():
            if key in shown[name]:
                assert shown[name][key] == (str(value) if isinstance(value, Path) else value), f"{name}.{key}"
            else:
                assert re.search(rf"^# ?{key} = ", text, re.M), f"ledgers.{name}.{key} is not in the example"
