"""Typed per-provider configuration (issue 18, item 2): Literal fields, validated once.

``CDNConfig`` stays the flat record of ``CDN_*`` variables; ``provider_config`` turns it
into one small typed value per provider (naming the variable on a bad value), whose
``build()`` makes the signer. ``build_signer`` and ``CDN`` go through it.
"""

from __future__ import annotations

from typing import get_args, get_type_hints

import pytest
from cryptography.hazmat.primitives import serialization

from veza_cdn import (
    CDN,
    AkamaiConfig,
    AkamaiSigner,
    BunnyConfig,
    BunnySigner,
    CDNConfig,
    CDNConfigurationError,
    CloudflareConfig,
    CloudflareHMACSigner,
    CloudFrontConfig,
    CloudFrontSigner,
    GoogleCDNSigner,
    GoogleConfig,
    Secret,
    build_signer,
    provider_config,
)

SECRET = "super-secret-key-value"
HEX = "0123456789abcdef"
GOOGLE_KEY = "nZtRohdNF9m3cKM24IcK4w=="


def _env(provider: str, **extra: str) -> dict[str, str]:
    return {
        "CDN_ENABLED": "true",
        "CDN_PROVIDER": provider,
        "CDN_BASE_URL": "https://cdn.example",
        **extra,
    }


@pytest.fixture
def pem_path(tmp_path, ec_key):
    path = tmp_path / "key.pem"
    path.write_bytes(
        ec_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def test_each_provider_gets_its_own_typed_config(pem_path):
    cases = [
        (_env("bunny", CDN_SECURITY_KEY=SECRET, CDN_TOKEN_SCHEME="sha256"), BunnyConfig),
        (_env("google", CDN_SECURITY_KEY=GOOGLE_KEY, CDN_KEY_NAME="k"), GoogleConfig),
        (_env("akamai", CDN_SECURITY_KEY=HEX, CDN_HASH_ALGORITHM="SHA1"), AkamaiConfig),
        (_env("cloudflare", CDN_SECURITY_KEY=SECRET, CDN_TTL="600"), CloudflareConfig),
        (
            _env(
                "cloudfront",
                CDN_KEY_PAIR_ID="K1",
                CDN_PRIVATE_KEY_PATH=str(pem_path),
                CDN_HASH_ALGORITHM="sha256",
            ),
            CloudFrontConfig,
        ),
    ]
    for env, kind in cases:
        typed = provider_config(CDNConfig.from_env(env))
        assert type(typed) is kind
        assert SECRET not in repr(typed) and GOOGLE_KEY not in repr(typed)
    assert provider_config(CDNConfig.from_env(cases[0][0])) == BunnyConfig(Secret(SECRET), "sha256")
    assert provider_config(CDNConfig.from_env(cases[2][0])).algorithm == "sha1"
    assert provider_config(CDNConfig.from_env(cases[3][0])).max_age == 600
    assert provider_config(CDNConfig.from_env(cases[4][0])).hash_algorithm == "SHA256"


def test_choices_are_literals_not_strings():
    assert get_args(get_type_hints(BunnyConfig)["scheme"]) == ("hs256", "sha256", "md5")
    assert get_args(get_type_hints(AkamaiConfig)["algorithm"]) == ("sha256", "sha1", "md5")
    assert get_args(get_type_hints(CloudFrontConfig)["hash_algorithm"]) == ("SHA1", "SHA256")


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        (_env("bunny", CDN_SECURITY_KEY=SECRET, CDN_TOKEN_SCHEME="sha512"), "CDN_TOKEN_SCHEME"),
        (_env("akamai", CDN_SECURITY_KEY=HEX, CDN_HASH_ALGORITHM="sha512"), "CDN_HASH_ALGORITHM"),
    ],
)
def test_a_bad_choice_names_its_variable_once_at_start_up(env, variable):
    config = CDNConfig.from_env(env)
    with pytest.raises(CDNConfigurationError, match=variable):
        provider_config(config)
    with pytest.raises(CDNConfigurationError, match=variable):
        CDN(config)


def test_typed_configs_build_the_signers(pem_path):
    assert BunnyConfig(Secret(SECRET), "md5").build().scheme == "md5"
    assert isinstance(BunnyConfig(Secret(SECRET)).build(), BunnySigner)
    assert isinstance(GoogleConfig("k", Secret(GOOGLE_KEY)).build(), GoogleCDNSigner)
    assert isinstance(AkamaiConfig(Secret(HEX)).build(), AkamaiSigner)
    assert isinstance(CloudflareConfig(Secret(SECRET), max_age=60).build(), CloudflareHMACSigner)
    assert isinstance(CloudFrontConfig("K1", pem_path).build(), CloudFrontSigner)
    with pytest.raises(CDNConfigurationError, match="CDN_PRIVATE_KEY_PATH"):
        CloudFrontConfig("K1", pem_path.with_name("missing.pem")).build()


def test_build_signer_goes_through_the_typed_config():
    config = CDNConfig.from_env(_env("bunny", CDN_SECURITY_KEY=SECRET, CDN_TOKEN_SCHEME="md5"))
    signer = build_signer(config)
    assert isinstance(signer, BunnySigner) and signer.scheme == "md5"


def test_a_disabled_cdn_has_no_provider_config():
    with pytest.raises(CDNConfigurationError, match="disabled"):
        provider_config(CDNConfig())
