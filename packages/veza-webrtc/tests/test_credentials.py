"""TURN REST API credentials: coturn's formula, rotation, the rules coturn imposes."""

import base64
import hashlib
import hmac

import pytest
from hypothesis import given, strategies as st

from veza_webrtc import WebRTCConfigurationError, check_credentials, ephemeral_credentials

user_ids = st.text(
    alphabet=st.characters(blacklist_characters=":", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=30,
)


@given(
    secret=st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s),
    user_id=user_ids,
    ttl=st.integers(300, 7 * 86400),
    now=st.integers(0, 2**31),
)
def test_formula_is_coturns(secret, user_id, ttl, now):
    creds = ephemeral_credentials(secret, user_id=user_id, ttl=ttl, now=now)
    assert creds.username == f"{now + ttl}:{user_id}"
    expected = hmac.digest(secret.encode(), creds.username.encode(), hashlib.sha1)
    assert base64.b64decode(creds.credential) == expected
    assert creds.expires_at == now + ttl
    assert check_credentials([secret], creds.username, credential=creds.credential, now=now + ttl)
    assert not check_credentials(
        [secret], creds.username, credential=creds.credential, now=now + ttl + 1
    )


def test_rotation_accepts_every_configured_secret():
    old = ephemeral_credentials("old", user_id="u", ttl=600, now=0)
    new = ephemeral_credentials("new", user_id="u", ttl=600, now=0)
    assert check_credentials(["new", "old"], old.username, credential=old.credential, now=1)
    assert check_credentials(["new", "old"], new.username, credential=new.credential, now=1)
    assert not check_credentials(["new"], old.username, credential=old.credential, now=1)


def test_without_user_id_the_username_is_the_expiry():
    assert ephemeral_credentials("s", ttl=300, now=10).username == "310"


def test_custom_separator():
    assert ephemeral_credentials("s", user_id="u", ttl=300, now=0, separator="|").username == (
        "300|u"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ttl": 299}, "300"),
        ({"user_id": "a:b"}, "separator"),
        ({"separator": "ab"}, "separator"),
        ({"separator": "x"}, "separator"),
    ],
)
def test_refusals(kwargs, message):
    with pytest.raises(WebRTCConfigurationError, match=message):
        ephemeral_credentials("s", **kwargs)


def test_empty_secret_refused_and_credential_not_in_repr():
    with pytest.raises(WebRTCConfigurationError):
        ephemeral_credentials("", user_id="u")
    creds = ephemeral_credentials("s", user_id="u", ttl=300, now=0)
    assert creds.credential not in repr(creds)
    assert set(creds.to_dict()) == {"username", "credential", "ttl", "expires_at"}
