"""CDNConfig.from_env: fail fast, name the variable, never echo a secret."""

import pytest
from cryptography.hazmat.primitives import serialization

from veza_cdn import (
    CDN,
    AkamaiSigner,
    BunnySigner,
    CDNConfig,
    CDNConfigurationError,
    CDNDisabledError,
    CloudflareHMACSigner,
    CloudFrontSigner,
    GoogleCDNSigner,
)

SECRET = "super-secret-key-value"


def test_disabled_by_default_and_always_constructible():
    cdn = CDN.from_env({})
    assert not cdn.is_enabled
    with pytest.raises(CDNDisabledError):
        cdn.signed_url("tracks/a.mp3")


def test_disabled_ignores_provider_settings():
    assert not CDN.from_env({"CDN_ENABLED": "false", "CDN_PROVIDER": "bunny"}).is_enabled


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"CDN_ENABLED": "maybe"}, "CDN_ENABLED"),
        ({"CDN_ENABLED": "true"}, "CDN_PROVIDER"),
        ({"CDN_ENABLED": "true", "CDN_PROVIDER": "fastly"}, "CDN_PROVIDER"),
        (
            {"CDN_ENABLED": "true", "CDN_PROVIDER": "bunny", "CDN_SECURITY_KEY": SECRET},
            "CDN_BASE_URL",
        ),
        (
            {"CDN_ENABLED": "true", "CDN_PROVIDER": "bunny", "CDN_BASE_URL": "https://z.b-cdn.net"},
            "CDN_SECURITY_KEY",
        ),
        (
            {
                "CDN_ENABLED": "true",
                "CDN_PROVIDER": "bunny",
                "CDN_BASE_URL": "https://z.b-cdn.net",
                "CDN_SECURITY_KEY": "  ",
            },
            "CDN_SECURITY_KEY",
        ),
        (
            {
                "CDN_ENABLED": "true",
                "CDN_PROVIDER": "google",
                "CDN_BASE_URL": "https://c.example",
                "CDN_SECURITY_KEY": SECRET,
            },
            "CDN_KEY_NAME",
        ),
        (
            {
                "CDN_ENABLED": "true",
                "CDN_PROVIDER": "cloudfront",
                "CDN_BASE_URL": "https://d.net",
                "CDN_KEY_PAIR_ID": "K1",
            },
            "CDN_PRIVATE_KEY_PATH",
        ),
        (
            {"CDN_ENABLED": "true", "CDN_PROVIDER": "r2", "CDN_R2_ACCOUNT_ID": "a"},
            "CDN_R2_ACCESS_KEY_ID",
        ),
        ({"CDN_TTL": "soon"}, "CDN_TTL"),
        ({"CDN_TTL": "0"}, "CDN_TTL"),
        (
            {
                "CDN_ENABLED": "1",
                "CDN_PROVIDER": "bunny",
                "CDN_BASE_URL": "z.b-cdn.net",
                "CDN_SECURITY_KEY": SECRET,
            },
            "CDN_BASE_URL",
        ),
    ],
)
def test_bad_configuration_names_the_variable_and_hides_secrets(env, variable):
    with pytest.raises(CDNConfigurationError) as info:
        CDN.from_env(env)
    assert variable in str(info.value)
    assert SECRET not in str(info.value)


def test_cloudfront_unreadable_key_file_names_the_variable(tmp_path):
    env = {
        "CDN_ENABLED": "true",
        "CDN_PROVIDER": "cloudfront",
        "CDN_BASE_URL": "https://d.net",
        "CDN_KEY_PAIR_ID": "K1",
        "CDN_PRIVATE_KEY_PATH": str(tmp_path / "missing.pem"),
    }
    with pytest.raises(CDNConfigurationError, match="CDN_PRIVATE_KEY_PATH"):
        CDN.from_env(env)


@pytest.mark.parametrize(
    ("provider", "extra", "kind"),
    [
        ("bunny", {"CDN_SECURITY_KEY": SECRET}, BunnySigner),
        (
            "google",
            {"CDN_SECURITY_KEY": "nZtRohdNF9m3cKM24IcK4w==", "CDN_KEY_NAME": "k"},
            GoogleCDNSigner,
        ),
        ("akamai", {"CDN_SECURITY_KEY": "abcdef", "CDN_HASH_ALGORITHM": "SHA1"}, AkamaiSigner),
        ("cloudflare", {"CDN_SECURITY_KEY": SECRET}, CloudflareHMACSigner),
    ],
)
def test_each_provider_builds_its_signer(provider, extra, kind):
    env = {
        "CDN_ENABLED": "true",
        "CDN_PROVIDER": provider,
        "CDN_BASE_URL": "https://cdn.example/",
    } | extra
    cdn = CDN.from_env(env)
    assert isinstance(cdn.signer, kind)
    url = cdn.signed_url("tracks/a b.mp3", now=1_700_000_000)
    assert url.startswith("https://cdn.example/tracks/a%20b.mp3")
    assert cdn.verify(url, now=1_700_000_001).valid
    assert SECRET not in repr(cdn)
    assert SECRET not in repr(CDNConfig.from_env(env))


def test_cloudfront_from_env(tmp_path, rsa_key):
    pem = tmp_path / "cf.pem"
    pem.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    cdn = CDN.from_env(
        {
            "CDN_ENABLED": "true",
            "CDN_PROVIDER": "cloudfront",
            "CDN_BASE_URL": "https://d.cloudfront.net",
            "CDN_KEY_PAIR_ID": "K1",
            "CDN_PRIVATE_KEY_PATH": str(pem),
            "CDN_HASH_ALGORITHM": "sha256",
        }
    )
    assert isinstance(cdn.signer, CloudFrontSigner)
    url = cdn.signed_url("a.mp4", now=1_700_000_000)
    assert url.endswith("Hash-Algorithm=SHA256")
    assert cdn.verify(url, now=1_700_000_000).valid


def test_expiry_window_makes_urls_stable_within_a_window():
    cdn = CDN.from_env(
        {
            "CDN_ENABLED": "true",
            "CDN_PROVIDER": "bunny",
            "CDN_BASE_URL": "https://z.b-cdn.net",
            "CDN_SECURITY_KEY": "k",
            "CDN_TTL": "600",
            "CDN_EXPIRY_WINDOW": "300",
        }
    )
    assert cdn.signed_url("a", now=1_700_000_100) == cdn.signed_url("a", now=1_700_000_199)
    assert cdn.signed_url("a", now=1_700_000_100) != cdn.signed_url("a", now=1_700_000_400)


def test_rotation_keys_from_env():
    old = BunnySigner("old-key").sign_url("https://z.b-cdn.net/a", expires=2_000_000_000)
    cdn = CDN.from_env(
        {
            "CDN_ENABLED": "true",
            "CDN_PROVIDER": "bunny",
            "CDN_BASE_URL": "https://z.b-cdn.net",
            "CDN_SECURITY_KEY": "new-key",
            "CDN_VERIFY_KEYS": "old-key, older-key",
        }
    )
    assert cdn.verify(old, now=1_900_000_000).valid


BUNNY_ENV = {
    "CDN_ENABLED": "true",
    "CDN_PROVIDER": "bunny",
    "CDN_BASE_URL": "https://cdn.example.com",
    "CDN_SECURITY_KEY": SECRET,
}


def test_from_env_then_build_gives_the_cdn():
    cdn = CDNConfig.from_env(BUNNY_ENV).build()
    assert isinstance(cdn, CDN) and cdn.is_enabled
    assert cdn.signed_url("tracks/a.mp3").startswith("https://cdn.example.com/tracks/a.mp3?")
    assert SECRET not in repr(cdn)


def test_a_value_is_plain_data_and_the_factories_validate():
    # constructing checks nothing across fields (no __attrs_post_init__); build and CDN do
    assert not hasattr(CDNConfig, "__attrs_post_init__")
    half = CDNConfig(enabled=True, provider="bunny", base_url="https://cdn.example.com")
    with pytest.raises(CDNConfigurationError, match="CDN_SECURITY_KEY"):
        half.build()
    with pytest.raises(CDNConfigurationError, match="CDN_SECURITY_KEY"):
        CDN(half)
    with pytest.raises(CDNConfigurationError, match="CDN_TTL"):
        CDNConfig(ttl=0).validate()


def test_the_config_is_keyword_only():
    with pytest.raises(TypeError):
        CDNConfig(True, "bunny")  # type: ignore[misc]
