"""Fixtures for veza-cdn's tests: keys, the published vectors, the vendors' own code."""

from __future__ import annotations

import importlib
import json
import os
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

VECTORS = json.loads((Path(__file__).parent / "vectors" / "cdn-published-vectors.json").read_text())


@pytest.fixture(scope="session")
def vectors() -> dict:
    return VECTORS


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def rsa_pem(rsa_key) -> bytes:
    return rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="session")
def edgeauth():
    """Akamai's own ``akamai-edgeauth`` package, imported without keeping its side effect.

    It sets ``os.environ['TZ'] = 'GMT'`` for the whole process at import; we restore the
    previous value so no other test runs under a changed time zone.
    """
    before = os.environ.get("TZ")
    module = importlib.import_module("akamai.edgeauth")
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()
    return module.EdgeAuth
