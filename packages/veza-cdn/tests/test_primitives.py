"""The precomputed HMAC equals hmac.digest; Secret never shows its value."""

import hmac
import logging
import pickle

import pytest
from hypothesis import given, strategies as st

from veza_cdn import Secret
from veza_cdn._hmac import KeyedHMAC


@given(
    key=st.binary(max_size=200),  # beyond the 64-byte block: long keys are hashed first
    message=st.binary(max_size=300),
    algorithm=st.sampled_from(["sha256", "sha1", "md5"]),
)
def test_keyed_hmac_equals_the_standard_library(key, message, algorithm):
    mac = KeyedHMAC(key, algorithm)
    assert mac.digest(message) == hmac.digest(key, message, algorithm)
    assert mac.hexdigest(message) == hmac.new(key, message, algorithm).hexdigest()
    assert mac.digest(message) == mac.digest(message)  # the keyed state is not consumed


def test_secret_hides_its_value_everywhere(caplog):
    secret = Secret("hunter2-value")
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in str(secret)
    assert "hunter2" not in f"{secret}"
    logging.getLogger("test").warning("config: %s", {"key": secret})
    assert "hunter2" not in caplog.text
    assert secret.reveal() == "hunter2-value"
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_secret_equality_is_by_value_and_type():
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret(b"a") != Secret("a")
    assert not Secret("")
