"""``LedgerConfig``: the ledger's variables read once, then ``.build()`` (issue 18)."""

from __future__ import annotations

import pytest

from veza_ledger import Ledger, LedgerConfig, LedgerConfigurationError, Secret

PASSWORD = "s3cr3t-pa55"


def test_from_env_reads_the_url_and_the_retention():
    config = LedgerConfig.from_env(
        {"VEZA_DATABASE_URL": " sqlite:// ", "HYPERSWITCH_WEBHOOK_LOG_RETENTION_DAYS": "30"}
    )
    assert config.database_url == Secret("sqlite://")
    assert config.webhook_log_retention_days == 30


def test_from_env_without_a_url_names_the_variable():
    with pytest.raises(LedgerConfigurationError, match="VEZA_DATABASE_URL is required"):
        LedgerConfig.from_env({})


def test_from_env_refuses_a_bad_retention_by_name():
    env = {"VEZA_DATABASE_URL": "sqlite://", "HYPERSWITCH_WEBHOOK_LOG_RETENTION_DAYS": "a week"}
    with pytest.raises(LedgerConfigurationError, match="HYPERSWITCH_WEBHOOK_LOG_RETENTION_DAYS"):
        LedgerConfig.from_env(env)


def test_the_password_in_the_url_is_never_shown():
    config = LedgerConfig.from_env(
        {"VEZA_DATABASE_URL": f"postgresql+psycopg://app:{PASSWORD}@127.0.0.1/ledger"}
    )
    for text in (repr(config), str(config), f"{config}", f"{config.database_url}"):
        assert PASSWORD not in text
    assert PASSWORD in config.database_url.reveal()


def test_build_returns_a_ledger_over_the_configured_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = LedgerConfig(database_url=url).build()
    try:
        assert isinstance(ledger, Ledger)
        assert ledger.engine.url.database == str(tmp_path / "ledger.db")
    finally:
        ledger.engine.dispose()


def test_build_refuses_a_malformed_url_without_repeating_it():
    config = LedgerConfig(database_url=f"not a url {PASSWORD}")
    with pytest.raises(LedgerConfigurationError, match="VEZA_DATABASE_URL") as caught:
        config.build()
    assert PASSWORD not in str(caught.value)


def test_the_config_is_keyword_only_and_frozen():
    with pytest.raises(TypeError):
        LedgerConfig("sqlite://")  # type: ignore[misc]
    config = LedgerConfig(database_url="sqlite://")
    with pytest.raises(AttributeError):
        config.webhook_log_retention_days = 1  # type: ignore[misc]
