"""One key space: a hostile corpus refused identically by both backends, and a fuzzed validator."""

import unicodedata

import pytest
from hypothesis import given, strategies as st

from veza_storage import InvalidKeyError, validate_key
from veza_storage.testing import hostile_keys

CORPUS = hostile_keys()


def test_the_corpus_is_large_and_varied():
    assert len(CORPUS) >= 200
    assert len(set(CORPUS)) == len(CORPUS)


@pytest.mark.parametrize("key", CORPUS, ids=lambda k: repr(k)[:40])
def test_validator_refuses(key):
    with pytest.raises(InvalidKeyError):
        validate_key(key)


@pytest.mark.parametrize("key", CORPUS, ids=lambda k: repr(k)[:40])
def test_both_backends_refuse_identically_and_write_nothing(storage, key):
    for attempt in (
        lambda: storage.put(key, b"x", content_type="text/plain"),
        lambda: storage.stat(key),
        lambda: storage.open(key),
        lambda: storage.delete(key),
        lambda: storage.presign_get(key, expires_in=60),
    ):
        with pytest.raises(InvalidKeyError):
            attempt()
    assert list(storage.list()) == []


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "tracks/2026/11/8f3a9c1e.mp3",
        "Ünïcödé/トラック.flac",
        "a.b.c",
        "v1.0/x_y-z~",
        "spaces are fine/x y.mp3",
        "%41",
        "100%/x",
        "UPPER/lower",
        "CONSOLE",
        "NULL",
        "COM10",
        ".hidden",
        "..hidden",
        "a" * 255,
        "/".join(["s" * 200] * 5),
    ],
)
def test_ordinary_keys_pass_unchanged(key):
    assert validate_key(key) == key


def test_keys_are_case_sensitive_on_both_backends(storage):
    storage.put("Track.mp3", b"upper", content_type="audio/mpeg")
    storage.put("track.mp3", b"lower", content_type="audio/mpeg")
    with storage.open("Track.mp3") as a, storage.open("track.mp3") as b:
        assert (a.read(), b.read()) == (b"upper", b"lower")


@given(st.text(max_size=80))
def test_validator_fuzz(key):
    try:
        result = validate_key(key)
    except InvalidKeyError:
        return
    assert result == key
    segments = key.split("/")
    assert all(s and s not in (".", "..") for s in segments)
    assert all(unicodedata.normalize("NFKC", s) not in (".", "..") for s in segments)
    assert "\\" not in key
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in key)
    assert len(key.encode()) <= 1024
