"""The ledger with veza-payments' real clients against their local provider fakes.

The adapters, then a chaos run: provider faults, duplicate/reordered/dropped webhooks,
and crashes injected between a provider's answer and the ledger's commit. After at most
two sweeps (with the workers), every invariant holds, every refund has its transfer
reversed proportionally, and no provider object exists twice.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from veza_ledger import (
    Ledger,
    ReconcileSettings,
    RefundExceedsCapturedError,
    event_from_hyperswitch,
    run_reversal_worker,
    run_sweep,
    run_transfer_worker,
)
from veza_ledger.adapters import PaymentsProviderView
from veza_payments import HyperswitchClient, RetryPolicy, StripeConnect, payment_id_for
from veza_payments.testing import FakeHyperswitch, FakeStripe, Fault

T0 = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeHyperswitch, FakeStripe]]:
    # the chaos includes a 429 from a gateway in front of the router (the router sends none)
    with FakeHyperswitch(rate_limit_faults=True) as hs, FakeStripe() as sp:
        yield hs, sp


@pytest.fixture
def clients(
    fakes: tuple[FakeHyperswitch, FakeStripe],
) -> Iterator[tuple[HyperswitchClient, StripeConnect]]:
    hs, sp = fakes
    hs.reset()
    sp.reset()
    policy = RetryPolicy(total=8)
    with (
        HyperswitchClient(
            hs.api_key, base_url=hs.url, timeout=0.5, max_retries=policy, sleep=lambda _s: None
        ) as hyperswitch,
        StripeConnect(
            sp.api_key, base_url=sp.url, timeout=0.5, max_retries=policy, sleep=lambda _s: None
        ) as stripe,
    ):
        yield hyperswitch, stripe


def test_the_adapters_read_the_providers(
    clients: tuple[HyperswitchClient, StripeConnect], fakes: tuple[FakeHyperswitch, FakeStripe]
) -> None:
    hyperswitch, stripe = clients
    fakes[0].refund_status = "succeeded"
    view = PaymentsProviderView(hyperswitch, stripe)
    payment = hyperswitch.create_payment("order-1", amount=700, currency="EUR", confirm=True)
    assert view.payment_for_order("order-1") == view.payment(payment.payment_id)
    state = view.payment(payment.payment_id)
    assert state is not None and (state.status, state.amount_received) == ("succeeded", 700)
    assert fakes[0].requests[-1].query == "force_sync=true"
    assert view.payment("p_missing") is None
    hyperswitch.create_refund("refund-row-1", payment_id=payment.payment_id, amount=200)
    refund = view.refund_for_row("refund-row-1")
    assert refund is not None and refund.amount == 200
    assert view.refund("r_missing") is None
    transfer = stripe.create_transfer(
        "transfer-row-1", amount=500, currency="EUR", destination="acct_9"
    )
    found = view.find_transfer(
        "transfer-row-1",
        destination="acct_9",
        created_after=dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
    )
    assert found is not None and found.transfer_id == transfer.id
    assert view.find_transfer("other-row", destination="acct_9", created_after=None) is None
    assert (
        PaymentsProviderView(hyperswitch).find_transfer(
            "transfer-row-1", destination="acct_9", created_after=None
        )
        is None
    )


class Crash(BaseException):
    """A worker killed between the provider's answer and the ledger's commit."""


class Crashy:
    """Wraps StripeConnect: sometimes the process dies right after Stripe answered."""

    def __init__(self, stripe: StripeConnect, rnd: random.Random, rate: float) -> None:
        self.stripe, self.rnd, self.rate = stripe, rnd, rate

    def create_transfer(self, idempotency_key: str, **kw: Any) -> Any:
        result = self.stripe.create_transfer(idempotency_key, **kw)
        if self.rnd.random() < self.rate:
            raise Crash
        return result

    def reverse_transfer(self, idempotency_key: str, transfer_id: str, **kw: Any) -> Any:
        result = self.stripe.reverse_transfer(idempotency_key, transfer_id, **kw)
        if self.rnd.random() < self.rate:
            raise Crash
        return result


def _run_until_done(fn: Any, attempts: int = 12) -> None:
    for _ in range(attempts):
        try:
            fn()
            return
        except Crash:
            continue


def _deliver(
    ledger: Ledger, fake: FakeHyperswitch, events: list[bytes], rnd: random.Random
) -> None:
    """Webhooks as providers deliver them: some twice, some dropped, in any order."""
    deliveries = [b for b in events if rnd.random() > 0.25]  # dropped ones never come
    deliveries += [b for b in deliveries if rnd.random() < 0.3]  # duplicates
    rnd.shuffle(deliveries)
    for body in deliveries:
        event = event_from_hyperswitch(json.loads(body))
        assert event is not None
        ledger.events.apply(event)


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1))
def test_chaos_heals_within_two_sweeps(  # noqa: PLR0915 - one story, told in order
    ledger: Ledger,
    clients: tuple[HyperswitchClient, StripeConnect],
    fakes: tuple[FakeHyperswitch, FakeStripe],
    seed: int,
) -> None:
    hs, sp = fakes
    hs.reset()
    sp.reset()
    hs.refund_status = "pending"  # pending refunds send no webhook: the sweep must poll them
    hyperswitch, stripe = clients
    rnd = random.Random(seed)
    run = f"{seed:x}-{uuid.uuid4().hex[:6]}"
    faults = [
        Fault("drop", after_commit=True),
        Fault("status", status=503, after_commit=True),
        Fault("status", status=429, retry_after=0),
        Fault("status", status=422),
    ]

    # A. payments, with provider faults, and their webhooks (dropped, duplicated, reordered)
    orders = []
    events: list[bytes] = []
    for i in range(5):
        oid = f"{run}-o{i}"
        amount = rnd.randint(100, 50_000)
        ledger.orders.create(
            order_id=oid,
            buyer_id="b",
            seller_id=f"s{i % 2}",
            amount=amount,
            currency="EUR",
            fee_amount=amount // 10,
            psp_payment_id=payment_id_for(oid),
        )
        hs.inject(*rnd.sample(faults, rnd.randint(0, 2)))
        payment = hyperswitch.create_payment(oid, amount=amount, currency="EUR", confirm=True)
        hs.clear_faults()
        events.append(
            hs.webhook_body(
                "payment_succeeded", fakes[0].payments[payment.payment_id], event_id=f"evt-{oid}"
            )
        )
        orders.append(oid)
    _deliver(ledger, hs, events, rnd)

    view = PaymentsProviderView(hyperswitch, stripe)
    later = T0 + dt.timedelta(hours=1)
    sweep_settings = ReconcileSettings(
        stuck_order_after=dt.timedelta(0),
        stuck_refund_after=dt.timedelta(0),
        missing_id_after=dt.timedelta(0),
    )
    run_sweep(
        ledger, view, now=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1), settings=sweep_settings
    )

    # B. seller transfers, paid by a worker that sometimes dies after Stripe answered
    crashy = Crashy(stripe, rnd, rate=0.4)
    for oid in orders:
        order = ledger.orders.get(oid)
        assert order.status == "paid"  # the first sweep healed every dropped webhook
        ledger.transfers.create(
            seller_id=order.seller_id,
            destination=f"acct_{order.seller_id}",
            amount=order.amount - order.fee_amount,
            currency="EUR",
            order_id=oid,
            transfer_id=f"{oid}-t",
        )
    _run_until_done(lambda: run_transfer_worker(ledger, crashy, now=later))

    # C. refunds: some crash before the provider's id is recorded; webhooks unreliable
    refund_events: list[bytes] = []
    for oid in orders:
        for j in range(rnd.randint(0, 3)):
            order = ledger.orders.get(oid)
            amount = (
                None if rnd.random() < 0.2 else rnd.randint(1, max(1, order.captured_amount // 2))
            )
            try:
                row = ledger.refunds.create(oid, amount, refund_id=f"{oid}-r{j}")
            except RefundExceedsCapturedError:
                continue
            sp_faults = rnd.sample(faults, rnd.randint(0, 1))
            hs.inject(*sp_faults)
            refund = hyperswitch.create_refund(
                row.id, payment_id=payment_id_for(oid), amount=row.amount
            )
            hs.clear_faults()
            if rnd.random() < 0.3:
                continue  # crashed before recording the PSP's refund id
            ledger.refunds.set_provider_id(row.id, refund.refund_id)
            if rnd.random() < 0.5:
                hs.set_refund_status(refund.refund_id, "succeeded")
                refund_events.append(
                    hs.webhook_body(
                        "refund_succeeded", hs.refunds[refund.refund_id], event_id=f"evt-{row.id}"
                    )
                )
    _deliver(ledger, hs, refund_events, rnd)
    _run_until_done(lambda: run_reversal_worker(ledger, crashy, now=later))

    # D. the providers settle everything; at most two sweeps (and the workers) heal the rest
    for refund_id in list(hs.refunds):
        hs.set_refund_status(refund_id, "succeeded")
    now = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    for sweep in range(2):
        run_sweep(ledger, view, now=now + dt.timedelta(minutes=10 * sweep), settings=sweep_settings)
        run_transfer_worker(ledger, stripe, now=now + dt.timedelta(days=1))
        run_reversal_worker(ledger, stripe, now=now + dt.timedelta(days=1))

    # E. invariants
    assert all(v == 0 for v in ledger.journal.trial_balance().values())
    assert len(hs.payments) == len(orders)  # one payment per order, whatever the faults
    ledger_refunds = [r for oid in orders for r in ledger.refunds.of_order(oid)]
    assert len(hs.refunds) == len(ledger_refunds)  # one PSP refund per refund row
    for refund in ledger_refunds:
        assert refund.status == "succeeded" and refund.hyperswitch_refund_id in hs.refunds
        assert hs.refunds[refund.hyperswitch_refund_id]["amount"] == refund.amount
    assert len(sp.transfers) == len(orders)  # one Stripe transfer per transfer row
    for oid in orders:
        order = ledger.orders.get(oid)
        assert order.refunded_amount == sum(r.amount for r in ledger.refunds.of_order(oid))
        (transfer,) = ledger.transfers.of_order(oid)
        seller_share_refunded = order.refunded_amount - order.fee_refunded
        assert transfer.reversed_amount == min(transfer.amount, seller_share_refunded)
        stripe_side = sp.transfers[transfer.stripe_transfer_id]  # type: ignore[index]
        assert stripe_side["amount_reversed"] == transfer.reversed_amount  # reversed once, exactly
