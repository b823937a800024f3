"""The shop's property-based suite: veza's strategies against veza's fakes, no network.

Run it with ``pytest --hypothesis-show-statistics`` to see how many examples each
strategy drew.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from shop import Shop

from veza_cdn import CDN, CDNConfig
from veza_cdn.strategies import expiries, hostile_paths, url_paths
from veza_payments import HyperswitchClient
from veza_payments.strategies import idempotency_keys, money, webhook_sequences
from veza_payments.testing import FakeHyperswitch
from veza_storage import InvalidKeyError
from veza_storage.strategies import hostile_keys, object_keys

WEBHOOK_KEY = "whk_shop_key"
CDN_KEY = "bunny-zone-key"
NOW = 1_900_000_000
FIXTURES = settings(
    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60
)
_serial = itertools.count()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeHyperswitch]:
    with FakeHyperswitch() as server:
        yield server


@pytest.fixture
def new_shop(fake: FakeHyperswitch, tmp_path: Path) -> Iterator[Callable[[], Shop]]:
    """A fresh shop per hypothesis example (a fixture runs once per test, not per example)."""
    with HyperswitchClient(fake.api_key, base_url=fake.url, sleep=lambda s: None) as client:
        yield lambda: Shop(client, WEBHOOK_KEY, CDN_KEY, tmp_path / f"media-{next(_serial)}")


@FIXTURES
@given(key=idempotency_keys(), pair=money(max_major=10_000))
def test_a_retried_checkout_charges_once(new_shop, fake, key, pair):
    shop = new_shop()
    key = f"{next(_serial)}-{key}"[:255]  # a fresh checkout each example
    before = len(fake.payments)
    first = shop.checkout(key, *pair)
    again = shop.checkout(key, *pair)  # the browser retried
    assert first == again
    assert len(fake.payments) == before + 1  # one payment at the provider, not two
    assert fake.payments[first]["amount"] == pair[0]


@FIXTURES
@given(sequence=webhook_sequences(WEBHOOK_KEY, event_types=["payment_succeeded"]))
def test_each_paid_event_marks_its_order_once(new_shop, sequence):
    shop = new_shop()
    answers = [shop.webhook(d.headers, d.body) for d in sequence]
    for delivery, status in zip(sequence, answers, strict=True):
        assert (status == 401) is (not delivery.signed_right)
    expected = {d.event["content"]["object"]["payment_id"] for d in sequence if d.signed_right}
    assert set(shop.paid) == expected
    assert all(times == 1 for times in shop.paid.values())


@FIXTURES
@given(path=url_paths(), expires=expiries(now=NOW))
def test_every_catalogue_path_gets_a_url_the_edge_accepts(new_shop, path, expires):
    shop = new_shop()
    url = shop.download_url(path, expires=expires)
    edge = CDN(CDNConfig(enabled=False), signer=shop.signer, clock=lambda: float(NOW))
    assert edge.verify(url).path == path


@FIXTURES
@given(raw=hostile_paths("/album/1"))
def test_an_album_token_never_opens_another_path(new_shop, raw):
    shop = new_shop()
    token = shop.signer.scoped(shop.cdn_base + "/album/1", expires=NOW + 60)(
        shop.cdn_base + "/album/1/a.mp3"
    )
    prefix = token[len(shop.cdn_base) : token.index("/album/1/a.mp3")]
    edge = CDN(CDNConfig(enabled=False), signer=shop.signer, clock=lambda: float(NOW))
    assert not edge.verify(shop.cdn_base + prefix + raw)


@FIXTURES
@given(key=object_keys(), data=st.binary(max_size=64))
def test_uploads_round_trip(new_shop, key, data):
    shop = new_shop()
    shop.upload(key, data)
    with shop.storage.open(key) as stored:
        assert stored.read() == data


@FIXTURES
@given(key=hostile_keys())
def test_hostile_upload_keys_are_refused_and_write_nothing(new_shop, key):
    shop = new_shop()
    with pytest.raises(InvalidKeyError):
        shop.upload(key, b"attack")
    assert list(shop.storage.list()) == []
