"""One boolean parser across the family: the same table through every package's copy.

The packages share no module (none depends on another), so each keeps ``parse_bool`` in
its config module. This test is what keeps the copies identical: one table of accepted
and refused spellings, run through veza-cdn's, veza-payments', veza-storage's,
veza-ledger's, veza-webrtc's and the reference app's parser, each expected to raise its
own package's configuration error naming the variable.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, strategies as st

from veza_cdn import CDNConfig, CDNConfigurationError
from veza_cdn._config import parse_bool as cdn_parse_bool
from veza_ledger import LedgerConfigurationError
from veza_ledger._config import parse_bool as ledger_parse_bool
from veza_payments import PaymentsConfig, PaymentsConfigurationError
from veza_payments._config import parse_bool as payments_parse_bool
from veza_reference import AppConfig, AppConfigurationError
from veza_reference._config import parse_bool as app_parse_bool
from veza_storage import StorageConfig, StorageConfigurationError
from veza_storage._config import parse_bool as storage_parse_bool
from veza_webrtc import WebRTCConfigurationError
from veza_webrtc._config import parse_bool as webrtc_parse_bool

PARSERS: dict[str, tuple[Callable[..., bool], type[Exception]]] = {
    "veza-cdn": (cdn_parse_bool, CDNConfigurationError),
    "veza-payments": (payments_parse_bool, PaymentsConfigurationError),
    "veza-storage": (storage_parse_bool, StorageConfigurationError),
    "veza-ledger": (ledger_parse_bool, LedgerConfigurationError),
    "veza-webrtc": (webrtc_parse_bool, WebRTCConfigurationError),
    "reference-app": (app_parse_bool, AppConfigurationError),
}

TRUE = ["1", "true", "TRUE", "True", "yes", "YES", "Yes", "on", "ON", "On", " true ", "\ttrue\n"]
FALSE = ["0", "false", "FALSE", "False", "no", "NO", "off", "OFF", "Off", " 0 "]
REFUSED = [
    "2",
    "-1",
    "01",
    "ture",
    "y",
    "n",
    "t",
    "f",
    "enabled",
    "disabled",
    "none",
    "null",
    "1.0",
    "true false",
    "yes!",
    "\u0131",  # dotless i: no Unicode folding games
    "ON\u200b",
]
UNSET: list[str | None] = [None, "", "   ", "\t\n"]
TABLE = (
    [(value, True) for value in TRUE]
    + [(value, False) for value in FALSE]
    + [(value, None) for value in REFUSED]
)


@pytest.mark.parametrize("package", sorted(PARSERS))
@pytest.mark.parametrize(("value", "expected"), TABLE)
def test_every_parser_reads_the_same_table(package: str, value: str, expected: bool | None) -> None:
    parse, error = PARSERS[package]
    if expected is None:
        with pytest.raises(error, match="SOME_FLAG") as caught:
            parse("SOME_FLAG", value)
        assert "1/0, true/false, yes/no, on/off" in str(caught.value)
    else:
        assert parse("SOME_FLAG", value) is expected
        assert parse("SOME_FLAG", value, default=not expected) is expected


@pytest.mark.parametrize("package", sorted(PARSERS))
@pytest.mark.parametrize("value", UNSET)
@pytest.mark.parametrize("default", [True, False])
def test_unset_or_blank_gives_the_default(package: str, value: str | None, default: bool) -> None:
    parse, _ = PARSERS[package]
    assert parse("SOME_FLAG", value, default=default) is default


@given(st.text(max_size=12), st.booleans())
def test_the_parsers_agree_on_any_text(value: str, default: bool) -> None:
    """Property: for any text, every copy gives the same answer or every copy refuses."""
    answers: set[object] = set()
    for parse, error in PARSERS.values():
        try:
            answers.add(parse("ANY_FLAG", value, default=default))
        except error as exc:
            answers.add(("refused", "ANY_FLAG" in str(exc)))
    assert answers in ({True}, {False}, {("refused", True)}), (value, answers)


# ---- the packages' boolean variables go through it -------------------------------------


@pytest.mark.parametrize("spelling", ["1", "yes", "ON", "True"])
def test_cdn_enabled_accepts_every_true_spelling(spelling: str) -> None:
    config = CDNConfig.from_env(
        {
            "CDN_ENABLED": spelling,
            "CDN_PROVIDER": "bunny",
            "CDN_BASE_URL": "https://zone.b-cdn.net",
            "CDN_SECURITY_KEY": "k" * 32,
        }
    )
    assert config.enabled is True


@pytest.mark.parametrize("spelling", ["1", "yes", "ON", "True"])
def test_aws_s3_enabled_accepts_every_true_spelling(spelling: str) -> None:
    """``AWS_S3_ENABLED=1`` selects S3 like ``CDN_ENABLED=1`` enables the CDN."""
    config = StorageConfig.from_env(
        {
            "VEZA_STORAGE_BACKEND": "s3",
            "AWS_S3_ENABLED": spelling,
            "AWS_S3_BUCKET": "tracks",
            "AWS_ACCESS_KEY_ID": "id",
            "AWS_SECRET_ACCESS_KEY": "secret-access-key",
        },
        production=True,
    )
    assert config.backend == "s3"


def test_a_misspelt_aws_s3_enabled_names_the_variable_in_production() -> None:
    with pytest.raises(StorageConfigurationError, match="AWS_S3_ENABLED"):
        StorageConfig.from_env(
            {
                "VEZA_STORAGE_BACKEND": "s3",
                "AWS_S3_ENABLED": "ture",
                "AWS_S3_BUCKET": "tracks",
                "AWS_ACCESS_KEY_ID": "id",
                "AWS_SECRET_ACCESS_KEY": "secret-access-key",
            },
            production=True,
        )


@pytest.mark.parametrize(("spelling", "expected"), [("1", True), ("off", False)])
def test_payments_stripe_compatible_uses_the_family_parser(spelling: str, expected: bool) -> None:
    config = PaymentsConfig.from_env(
        {
            "HYPERSWITCH_API_KEY": "snd_key",
            "HYPERSWITCH_WEBHOOK_KEYS": "whsec",
            "HYPERSWITCH_WEBHOOK_STRIPE_COMPATIBLE": spelling,
        }
    )
    assert config.stripe_compatible_webhooks is expected


def test_app_flags_use_the_family_parser(tmp_path: object) -> None:
    config = AppConfig.from_env(
        {"VEZA_DATA_DIR": str(tmp_path), "VEZA_WORKERS": "Off", "VEZA_LOCAL_EDGE": "YES"}
    )
    assert config.workers is False and config.local_edge is True
    with pytest.raises(AppConfigurationError, match="VEZA_WORKERS"):
        AppConfig.from_env({"VEZA_DATA_DIR": str(tmp_path), "VEZA_WORKERS": "nope"})
