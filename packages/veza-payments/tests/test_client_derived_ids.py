"""``HyperswitchClient.payment_id_for`` / ``refund_id_for``: the ids the client itself uses.

An integrator who stores the provider id before the call (so a webhook that arrives
first finds its row) used to re-derive it with the module function and, with an
``idempotency_namespace`` set, forget the namespace: a different id, a webhook for an
unknown payment. The client's methods answer the id of the object it then creates,
checked here against a fake Hyperswitch over real HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from hypothesis import given, settings, strategies as st

from veza_payments import (
    AsyncHyperswitchClient,
    HyperswitchClient,
    InvalidIdempotencyKeyError,
    MissingIdempotencyKeyError,
    payment_id_for,
    refund_id_for,
)
from veza_payments.testing import FakeHyperswitch

_KEYS = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64)
_NAMESPACES = st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True)


@pytest.fixture(scope="module")
def hyperswitch() -> Iterator[FakeHyperswitch]:
    with FakeHyperswitch() as server:
        yield server


def test_the_ids_are_those_of_the_created_objects(hyperswitch: FakeHyperswitch) -> None:
    with HyperswitchClient(
        hyperswitch.api_key, base_url=hyperswitch.url, idempotency_namespace="shopa"
    ) as client:
        payment = client.create_payment("order-1", amount=1500, currency="EUR", confirm=True)
        refund = client.create_refund("refund-1", payment_id=payment.payment_id, amount=500)
        assert client.payment_id_for("order-1") == payment.payment_id
        assert client.refund_id_for("refund-1") == refund.refund_id
        # what the docs used to do: the namespace-less module function, another id
        assert payment.payment_id != payment_id_for("order-1")
        assert refund.refund_id != refund_id_for("refund-1")
        assert payment.payment_id in hyperswitch.payments


def test_the_async_client_answers_the_same_ids(hyperswitch: FakeHyperswitch) -> None:
    async def scenario() -> tuple[str, str, str, str]:
        async with AsyncHyperswitchClient(
            hyperswitch.api_key, base_url=hyperswitch.url, idempotency_namespace="shopb"
        ) as client:
            payment = await client.create_payment(
                "order-2", amount=700, currency="EUR", confirm=True
            )
            refund = await client.create_refund("refund-2", payment_id=payment.payment_id)
            return (
                client.payment_id_for("order-2"),
                payment.payment_id,
                client.refund_id_for("refund-2"),
                refund.refund_id,
            )

    derived_payment, payment_id, derived_refund, refund_id = asyncio.run(scenario())
    assert (derived_payment, derived_refund) == (payment_id, refund_id)
    assert payment_id.startswith("p_shopb_") and refund_id.startswith("r_shopb_")


@settings(max_examples=25, deadline=None)
@given(key=_KEYS, namespace=st.one_of(st.just(""), _NAMESPACES))
def test_property_the_client_derives_what_it_sends(
    hyperswitch: FakeHyperswitch, key: str, namespace: str
) -> None:
    """Any valid key and namespace: the id the client would report is the one it creates."""
    with HyperswitchClient(
        hyperswitch.api_key, base_url=hyperswitch.url, idempotency_namespace=namespace
    ) as client:
        payment = client.create_payment(key, amount=100, currency="EUR", confirm=True)
        assert client.payment_id_for(key) == payment.payment_id
        assert client.payment_id_for(key) == payment_id_for(key, namespace=namespace)
        assert client.refund_id_for(key) == refund_id_for(key, namespace=namespace)


@pytest.mark.parametrize(
    ("key", "error"),
    [
        ("", MissingIdempotencyKeyError),
        ("  ", MissingIdempotencyKeyError),
        ("a b", InvalidIdempotencyKeyError),
    ],
)
def test_a_bad_key_is_refused_as_the_calls_refuse_it(key: str, error: type[Exception]) -> None:
    client = HyperswitchClient("snd_test", base_url="http://127.0.0.1:9", idempotency_namespace="x")
    with client, pytest.raises(error):
        client.payment_id_for(key)
    with pytest.raises(error):
        client.refund_id_for(key)
