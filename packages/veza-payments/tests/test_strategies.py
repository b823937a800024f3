"""veza_payments.strategies: valid for the providers, and WebhookIntake agrees with every label."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings, strategies as st

from veza_payments import (
    HyperswitchClient,
    InMemoryWebhookLog,
    RetryPolicy,
    WebhookIntake,
    check_amount,
    exponent,
    format_amount,
)
from veza_payments._ids import MAX_ID
from veza_payments.strategies import (
    amounts,
    currencies,
    idempotency_keys,
    money,
    payment_ids,
    refund_ids,
    webhook_deliveries,
    webhook_sequences,
)
from veza_payments.testing import FakeHyperswitch

KEY = "whk_strategies_key"


@given(pair=money())
def test_money_is_valid_minor_units(pair):
    amount, currency = pair
    assert check_amount(amount) == amount
    assert format_amount(amount, currency)


@given(amount=currencies(exponents=(0,)).flatmap(lambda c: amounts(c, max_major=5)))
def test_zero_decimal_amounts_are_whole_units(amount):
    assert 1 <= amount <= 5


def test_currency_filter():
    @given(currencies(exponents=(3,)))
    def check(code):
        assert exponent(code) == 3

    check()


@given(pid=payment_ids(namespace="t1"), rid=refund_ids(), key=idempotency_keys())
def test_ids_fit_the_router(pid, rid, key):
    assert len(pid) <= MAX_ID and len(rid) <= MAX_ID
    assert key.isascii() and not any(c.isspace() for c in key)


def test_the_fake_accepts_drawn_payments():
    drawn = Counter[str]()
    with (
        FakeHyperswitch() as fake,
        HyperswitchClient(fake.api_key, base_url=fake.url, sleep=lambda s: None) as client,
    ):

        @settings(max_examples=25, deadline=None)
        @given(key=idempotency_keys(), pair=money(max_major=1000))
        def check(key, pair):
            drawn.update(["example"])
            key = f"{drawn['example']}-{key}"[:255]  # one key per payment, as the contract says
            payment = client.create_payment(key, amount=pair[0], currency=pair[1])
            assert payment.payment_id == client.payment_id_for(key)
            assert payment.amount == pair[0]

        check()


@settings(max_examples=150)
@given(delivery=webhook_deliveries(KEY))
def test_intake_refuses_exactly_the_badly_signed(delivery):
    intake = WebhookIntake(InMemoryWebhookLog(), (KEY,))
    outcome = intake.handle(delivery.headers, delivery.body)
    assert (outcome.status == 401) is (not delivery.signed_right)
    assert outcome.record.event_type == delivery.event["event_type"]


@settings(max_examples=60)
@given(delivery=webhook_deliveries(KEY, stripe_compatible=True))
def test_stripe_compatible_deliveries(delivery):
    intake = WebhookIntake(
        InMemoryWebhookLog(), (KEY,), stripe_compatible=True, stripe_tolerance=None
    )
    assert (intake.handle(delivery.headers, delivery.body).status == 401) is (
        not delivery.signed_right
    )


@settings(max_examples=80)
@given(sequence=webhook_sequences(KEY, event_types=["payment_succeeded", "refund_succeeded"]))
def test_each_signed_event_is_applied_once_whatever_the_order(sequence):
    intake = WebhookIntake(InMemoryWebhookLog(), (KEY,))
    applied: Counter[str] = Counter()
    for event_type in ("payment_succeeded", "refund_succeeded"):
        intake.on(event_type, lambda event: applied.update([event.event_id]))
    for delivery in sequence:
        intake.handle(delivery.headers, delivery.body)
    expected = {d.event["event_id"] for d in sequence if d.signed_right}
    assert set(applied) == expected
    assert all(count == 1 for count in applied.values())


def test_retry_policy_resolves_through_the_entry_point_hook():
    @given(st.from_type(RetryPolicy))
    def check(policy):
        assert policy.total >= 0 and policy.max_elapsed > 0

    check()
