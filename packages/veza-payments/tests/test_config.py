"""PaymentsConfig.from_env: fails at start-up naming the variable; never shows secrets."""

from __future__ import annotations

import pytest

from veza_payments import (
    HYPERSWITCH_RETRY_WINDOW,
    SANDBOX_URL,
    HyperswitchClient,
    InMemoryWebhookLog,
    PaymentsConfig,
    PaymentsConfigurationError,
    Secret,
    sign_payload,
)
from veza_payments.testing import FakeHyperswitch

BASE = {
    "HYPERSWITCH_API_KEY": "snd_secret_api_key",
    "HYPERSWITCH_WEBHOOK_KEYS": "hash-new, hash-old",
}


def test_defaults_and_secrets_hidden() -> None:
    config = PaymentsConfig.from_env(BASE)
    assert config.hyperswitch_base_url == SANDBOX_URL
    assert [key.reveal() for key in config.webhook_keys] == ["hash-new", "hash-old"]
    assert config.hyperswitch_api_key.reveal() == "snd_secret_api_key"
    assert (config.timeout, config.max_retries, config.idempotency_namespace) == (30.0, 4, "")
    assert config.stripe_webhook_tolerance == HYPERSWITCH_RETRY_WINDOW
    text = repr(config)
    assert "snd_secret_api_key" not in text and "hash-new" not in text
    assert "hyperswitch_api_key=Secret('********')" in text


@pytest.mark.parametrize(
    ("changes", "variable"),
    [
        ({"HYPERSWITCH_API_KEY": ""}, "HYPERSWITCH_API_KEY"),
        ({"HYPERSWITCH_WEBHOOK_KEYS": " "}, "HYPERSWITCH_WEBHOOK_KEYS"),
        ({"HYPERSWITCH_BASE_URL": "sandbox.hyperswitch.io"}, "HYPERSWITCH_BASE_URL"),
        ({"HYPERSWITCH_TIMEOUT": "fast"}, "HYPERSWITCH_TIMEOUT"),
        ({"HYPERSWITCH_TIMEOUT": "0"}, "HYPERSWITCH_TIMEOUT"),
        ({"HYPERSWITCH_MAX_RETRIES": "2.5"}, "HYPERSWITCH_MAX_RETRIES"),
        ({"HYPERSWITCH_MAX_RETRIES": "-1"}, "HYPERSWITCH_MAX_RETRIES"),
        ({"HYPERSWITCH_IDEMPOTENCY_NAMESPACE": "My-Shop"}, "HYPERSWITCH_IDEMPOTENCY_NAMESPACE"),
        (
            {"HYPERSWITCH_WEBHOOK_STRIPE_COMPATIBLE": "maybe"},
            "HYPERSWITCH_WEBHOOK_STRIPE_COMPATIBLE",
        ),
        ({"HYPERSWITCH_WEBHOOK_STRIPE_TOLERANCE": "-3"}, "HYPERSWITCH_WEBHOOK_STRIPE_TOLERANCE"),
        ({"STRIPE_API_BASE": "localhost:12111"}, "STRIPE_API_BASE"),
    ],
)
def test_each_bad_variable_is_named(changes: dict[str, str], variable: str) -> None:
    with pytest.raises(PaymentsConfigurationError, match=variable) as info:
        PaymentsConfig.from_env({**BASE, **changes})
    assert "snd_secret_api_key" not in str(info.value)


def test_stripe_is_required_only_when_asked() -> None:
    config = PaymentsConfig.from_env(BASE)
    with pytest.raises(PaymentsConfigurationError, match="STRIPE_SECRET_KEY"):
        config.stripe_connect()
    with pytest.raises(PaymentsConfigurationError, match="STRIPE_SECRET_KEY"):
        PaymentsConfig.from_env(BASE, require_stripe=True)
    with_stripe = PaymentsConfig.from_env(
        {**BASE, "STRIPE_SECRET_KEY": "sk_test_x"}, require_stripe=True
    )
    assert "sk_test_x" not in repr(with_stripe)
    with_stripe.stripe_connect().close()


def test_tolerance_none_disables_the_timestamp_check() -> None:
    config = PaymentsConfig.from_env(
        {
            **BASE,
            "HYPERSWITCH_WEBHOOK_STRIPE_TOLERANCE": "none",
            "HYPERSWITCH_WEBHOOK_STRIPE_COMPATIBLE": "true",
        }
    )
    assert config.stripe_webhook_tolerance is None and config.stripe_compatible_webhooks


def test_the_built_objects_work() -> None:
    with FakeHyperswitch() as fake:
        config = PaymentsConfig.from_env(
            {
                "HYPERSWITCH_API_KEY": fake.api_key,
                "HYPERSWITCH_WEBHOOK_KEYS": "k1,k0",
                "HYPERSWITCH_BASE_URL": fake.url,
                "HYPERSWITCH_IDEMPOTENCY_NAMESPACE": "shop",
            }
        )
        with config.build() as client:
            payment = client.create_payment("o", amount=10, currency="EUR")
        assert payment.payment_id.startswith("p_shop_")
    intake = config.webhook_intake(InMemoryWebhookLog())
    body = b'{"event_type":"x"}'
    assert intake.handle({"x-webhook-signature-512": sign_payload(body, "k0")}, body).status == 200


def test_api_only_jobs_need_no_webhook_keys() -> None:
    config = PaymentsConfig.from_env({"HYPERSWITCH_API_KEY": "k"}, require_webhook_keys=False)
    assert config.webhook_keys == ()
    with pytest.raises(PaymentsConfigurationError, match="HYPERSWITCH_WEBHOOK_KEYS"):
        config.webhook_intake(InMemoryWebhookLog())


def test_build_is_the_factory_and_hyperswitch_client_its_deprecated_alias() -> None:
    config = PaymentsConfig.from_env(BASE)
    with config.build() as client:
        assert isinstance(client, HyperswitchClient)
        assert "snd_secret_api_key" not in repr(client)
    with (
        pytest.warns(DeprecationWarning, match=r"PaymentsConfig\.build\(\)"),
        config.hyperswitch_client() as legacy,
    ):
        assert isinstance(legacy, HyperswitchClient)


def test_secret_fields_take_plain_strings_and_keep_them_masked() -> None:
    config = PaymentsConfig(
        hyperswitch_api_key="snd_plain", webhook_keys=["whk_plain"], stripe_secret_key="sk_plain"
    )
    assert all(isinstance(k, Secret) for k in config.webhook_keys)
    assert config.stripe_secret_key.reveal() == "sk_plain"
    for plain in ("snd_plain", "whk_plain", "sk_plain"):
        assert plain not in repr(config) and plain not in str(config)
