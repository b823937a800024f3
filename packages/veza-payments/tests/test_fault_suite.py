"""The randomised fault suite: no double charge, no lost refund, no double transfer.

Hypothesis draws sequences of logical calls (payments, refunds, transfers, reversals,
and replays of earlier calls, with and without changed parameters); each call meets
zero to three injected faults on either side of the provider's commit. After every
call, the provider's state (the fakes' stores) is compared with a model of what the
caller asked for: for every logical call exactly one provider-side object exists, the
client returned it, and the amounts match.
"""

from __future__ import annotations

import collections
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from veza_payments import (
    HyperswitchClient,
    IdempotencyConflictError,
    InvalidRequestError,
    RetryPolicy,
    StripeConnect,
    payment_id_for,
    refund_id_for,
)
from veza_payments.testing import FakeHyperswitch, FakeStripe, Fault

MIN_LOGICAL_CALLS = 1000
TIMEOUT = 0.15
SLOW = 0.2  # longer than TIMEOUT: the client gives up while the provider works

fault_strategy = st.one_of(
    st.builds(Fault, st.just("drop"), after_commit=st.booleans()),
    st.builds(
        Fault,
        st.just("status"),
        after_commit=st.booleans(),
        status=st.sampled_from([500, 502, 503, 504]),
    ),
    st.builds(
        Fault, st.just("status"), status=st.just(429), retry_after=st.sampled_from([0, 1, 2])
    ),
    # 422 HE_00 (resource busy) on Hyperswitch; 409 lock_timeout on Stripe.
    st.builds(Fault, st.just("status"), status=st.just(422)),
)
# Slow responses cost real time: rarer, but present in every run.
slow_fault = st.builds(Fault, st.just("slow"), after_commit=st.booleans(), delay=st.just(SLOW))
# One call in 25 meets a slow response (each costs SLOW seconds of real time).
# (Hypothesis favours boundary values, so the rare branch sits on a middle value.)
faults_for_one_call = st.integers(0, 99).flatmap(
    lambda n: (
        st.tuples(slow_fault).map(list) if n % 25 == 13 else st.lists(fault_strategy, max_size=3)
    )
)

operation = st.one_of(
    st.tuples(
        st.just("payment"),
        st.integers(1, 10**7),
        st.sampled_from(["EUR", "USD", "JPY", "KWD"]),
        faults_for_one_call,
    ),
    st.tuples(st.just("replay_payment"), st.integers(0, 10**6), st.booleans(), faults_for_one_call),
    st.tuples(
        st.just("refund"),
        st.integers(0, 10**6),
        st.one_of(st.none(), st.integers(1, 10**7)),
        faults_for_one_call,
    ),
    st.tuples(st.just("replay_refund"), st.integers(0, 10**6), st.booleans(), faults_for_one_call),
    # A refund of exactly what is left (the router answers a repeat with IR_13, not HE_01).
    st.tuples(st.just("exhausting_refund"), st.integers(0, 10**6), st.none(), faults_for_one_call),
    # Several workers run one logical call at once with one key.
    st.tuples(
        st.just("concurrent"),
        st.integers(0, 10**6),
        st.sampled_from(["payment", "exhausting_refund", "replay_refund"]),
        st.lists(fault_strategy, max_size=2),
    ),
    st.tuples(
        st.just("transfer"),
        st.integers(1, 10**7),
        st.sampled_from(["acct_a", "acct_b"]),
        faults_for_one_call,
    ),
    st.tuples(
        st.just("replay_transfer"), st.integers(0, 10**6), st.booleans(), faults_for_one_call
    ),
    st.tuples(
        st.just("reversal"),
        st.integers(0, 10**6),
        st.one_of(st.none(), st.integers(1, 10**7)),
        faults_for_one_call,
    ),
)


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeHyperswitch, FakeStripe]]:
    # 429s come from a gateway in front of the router (the router sends none): opt in.
    with FakeHyperswitch(rate_limit_faults=True) as hs, FakeStripe() as sp:
        yield hs, sp


def _no_sleep(_seconds: float) -> None:
    return None


class Model:
    """What the caller asked for, to compare with the provider's stores."""

    def __init__(self) -> None:
        self.payments: dict[str, dict[str, Any]] = {}  # key -> amount, currency, id
        self.refunds: dict[str, dict[str, Any]] = {}  # key -> payment_id, amount, id
        self.transfers: dict[str, dict[str, Any]] = {}  # key -> amount, destination, id
        self.reversals: dict[str, dict[str, Any]] = {}  # key -> transfer, amount, id
        self.refunded: collections.Counter[str] = collections.Counter()
        self.reversed: collections.Counter[str] = collections.Counter()


def test_fault_suite_exactly_one_object_per_logical_call(
    fakes: tuple[FakeHyperswitch, FakeStripe], record_property: Any
) -> None:
    hs, sp = fakes
    stats: collections.Counter[str] = collections.Counter()
    policy = RetryPolicy(total=8, max_elapsed=60)
    client = HyperswitchClient(
        hs.api_key, base_url=hs.url, timeout=TIMEOUT, max_retries=policy, sleep=_no_sleep
    )
    connect = StripeConnect(
        sp.api_key, base_url=sp.url, timeout=TIMEOUT, max_retries=policy, sleep=_no_sleep
    )

    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(operation, min_size=25, max_size=30))
    def run(ops: list[tuple[Any, ...]]) -> None:
        hs.wait_idle()
        sp.wait_idle()
        hs.reset()
        sp.reset()
        model = Model()
        run_id = uuid.uuid4().hex[:8]
        for index, (kind, a, b, faults) in enumerate(ops):
            key = f"{run_id}-{index}"
            server = sp if kind in {"transfer", "replay_transfer", "reversal"} else hs
            server.inject(*faults)
            stats["faults"] += len(faults)
            stats["slow"] += sum(f.kind == "slow" for f in faults)
            before = stats["logical"]
            _apply(kind, a, b, key, Ctx(model, client, connect, hs, sp, stats))
            ran = stats["logical"] > before  # replays need an earlier object
            # (Concurrent workers share the faults; a worker may leave some unused.)
            assert server.pending_faults == 0 or not ran or kind == "concurrent"
            server.clear_faults()
            _check(model, hs, sp)
        hs.wait_idle()
        sp.wait_idle()
        _check(model, hs, sp)

    try:
        run()
    finally:
        client.close()
        connect.close()
    record_property("logical_calls", stats["logical"])
    print(f"\nfault suite: {dict(stats)}")  # noqa: T201 - the figure the issue asks for
    assert stats["logical"] >= MIN_LOGICAL_CALLS
    assert stats["faults"] > 0 and stats["conflicts"] > 0 and stats["replays"] > 0
    assert stats["exhausting_refunds"] > 0 and stats["concurrent_calls"] > 0
    # _check ran after every call: any lost refund (the client raised, the provider holds
    # it), double refund or double charge (two objects for one logical call) failed it.
    print(  # noqa: T201
        "lost refunds: 0, double refunds: 0, double charges: 0 "
        f"over {stats['logical']} logical calls"
    )


class Ctx:
    """Everything one logical call needs."""

    def __init__(
        self,
        model: Model,
        client: HyperswitchClient,
        connect: StripeConnect,
        hs: FakeHyperswitch,
        sp: FakeStripe,
        stats: collections.Counter[str],
    ) -> None:
        self.model, self.client, self.connect = model, client, connect
        self.hs, self.sp, self.stats = hs, sp, stats


def _payment(ctx: Ctx, key: str, a: Any, b: Any) -> None:
    payment = ctx.client.create_payment(key, amount=a, currency=b, confirm=True)
    assert payment.payment_id == payment_id_for(key)
    assert (payment.amount, payment.currency) == (a, b)
    ctx.model.payments[key] = {"amount": a, "currency": b, "id": payment.payment_id}


def _replay_payment(ctx: Ctx, key: str, a: Any, b: Any) -> None:
    if not ctx.model.payments:
        ctx.stats["logical"] -= 1
        return
    old_key = sorted(ctx.model.payments)[a % len(ctx.model.payments)]
    want = ctx.model.payments[old_key]
    if b:  # changed parameters: a conflict, never a second payment
        ctx.hs.clear_faults()
        with pytest.raises(IdempotencyConflictError) as info:
            ctx.client.create_payment(old_key, amount=want["amount"] + 1, currency=want["currency"])
        assert info.value.existing.payment_id == want["id"]
        ctx.stats["conflicts"] += 1
    else:
        again = ctx.client.create_payment(old_key, amount=want["amount"], currency=want["currency"])
        assert again.payment_id == want["id"] and again.amount == want["amount"]
        ctx.stats["replays"] += 1


def _refund(ctx: Ctx, key: str, a: Any, b: Any) -> None:
    if not ctx.model.payments:
        ctx.stats["logical"] -= 1
        return
    pay_key = sorted(ctx.model.payments)[a % len(ctx.model.payments)]
    pay = ctx.model.payments[pay_key]
    remaining = pay["amount"] - ctx.model.refunded[pay["id"]]
    amount = None if b is None else (b % (pay["amount"] + 2)) or 1
    expected = pay["amount"] if amount is None else amount  # None: the amount captured
    if expected <= 0 or expected > remaining:
        with pytest.raises(InvalidRequestError) as info:
            ctx.client.create_refund(key, payment_id=pay["id"], amount=amount)
        assert info.value.code == "IR_13"
        assert refund_id_for(key) not in ctx.hs.refunds
        ctx.stats["refused_refunds"] += 1
        return
    refund = ctx.client.create_refund(key, payment_id=pay["id"], amount=amount)
    assert refund.refund_id == refund_id_for(key) and refund.amount == expected
    ctx.model.refunds[key] = {"payment_id": pay["id"], "amount": expected, "id": refund.refund_id}
    ctx.model.refunded[pay["id"]] += expected


def _replay_refund(ctx: Ctx, key: str, a: Any, b: Any) -> None:
    if not ctx.model.refunds:
        ctx.stats["logical"] -= 1
        return
    old_key = sorted(ctx.model.refunds)[a % len(ctx.model.refunds)]
    want = ctx.model.refunds[old_key]
    if b:
        ctx.hs.clear_faults()
        with pytest.raises(IdempotencyConflictError):
            ctx.client.create_refund(
                old_key, payment_id=want["payment_id"], amount=want["amount"] + 1
            )
        ctx.stats["conflicts"] += 1
    else:
        again = ctx.client.create_refund(
            old_key, payment_id=want["payment_id"], amount=want["amount"]
        )
        assert again.refund_id == want["id"] and again.amount == want["amount"]
        ctx.stats["replays"] += 1


def _transfer(ctx: Ctx, key: str, a: Any, b: Any) -> None:
    transfer = ctx.connect.create_transfer(key, amount=a, currency="EUR", destination=b)
    assert (transfer.amount, transfer.destination) == (a, b)
    ctx.model.transfers[key] = {"amount": a, "destination": b, "id": transfer.id}


def _replay_transfer(ctx: Ctx, key: str, a: Any, b: Any) -> None:
    if not ctx.model.transfers:
        ctx.stats["logical"] -= 1
        return
    old_key = sorted(ctx.model.transfers)[a % len(ctx.model.transfers)]
    want = ctx.model.transfers[old_key]
    if b:
        ctx.sp.clear_faults()
        with pytest.raises(IdempotencyConflictError):
            ctx.connect.create_transfer(
                old_key,
                amount=want["amount"] + 1,
                currency="EUR",
                destination=want["destination"],
            )
        ctx.stats["conflicts"] += 1
    else:
        again = ctx.connect.create_transfer(
            old_key, amount=want["amount"], currency="EUR", destination=want["destination"]
        )
        assert again.id == want["id"]
        ctx.stats["replays"] += 1


def _reversal(ctx: Ctx, key: str, a: Any, b: Any) -> None:
    if not ctx.model.transfers:
        ctx.stats["logical"] -= 1
        return
    tr_key = sorted(ctx.model.transfers)[a % len(ctx.model.transfers)]
    tr = ctx.model.transfers[tr_key]
    remaining = tr["amount"] - ctx.model.reversed[tr["id"]]
    amount = None if b is None else (b % (tr["amount"] + 2)) or 1
    expected = remaining if amount is None else amount
    if expected <= 0 or expected > remaining:
        with pytest.raises(InvalidRequestError):
            ctx.connect.reverse_transfer(key, tr["id"], amount=amount)
        ctx.stats["refused_reversals"] += 1
        return
    reversal = ctx.connect.reverse_transfer(key, tr["id"], amount=amount)
    assert reversal.amount == expected and reversal.transfer == tr["id"]
    ctx.model.reversals[key] = {"transfer": tr["id"], "amount": expected, "id": reversal.id}
    ctx.model.reversed[tr["id"]] += expected


def _exhausting_refund(ctx: Ctx, key: str, a: Any, b: Any) -> None:
    payments = [
        k for k, p in ctx.model.payments.items() if ctx.model.refunded[p["id"]] < p["amount"]
    ]
    if not payments:
        ctx.stats["logical"] -= 1
        return
    pay = ctx.model.payments[sorted(payments)[a % len(payments)]]
    remaining = pay["amount"] - ctx.model.refunded[pay["id"]]
    # Nothing refunded yet: the full refund (no amount); else exactly the remainder.
    amount = None if remaining == pay["amount"] else remaining
    refund = ctx.client.create_refund(key, payment_id=pay["id"], amount=amount)
    assert refund.refund_id == refund_id_for(key) and refund.amount == remaining
    ctx.model.refunds[key] = {"payment_id": pay["id"], "amount": remaining, "id": refund.refund_id}
    ctx.model.refunded[pay["id"]] += remaining
    ctx.stats["exhausting_refunds"] += 1
    # The same logical call again (a worker restarted): the same refund, not IR_13.
    again = ctx.client.create_refund(key, payment_id=pay["id"], amount=amount)
    assert again == refund
    ctx.stats["exhausting_replays"] += 1


WORKERS = 4


def _concurrent(ctx: Ctx, key: str, a: Any, b: Any) -> None:
    """WORKERS threads run one logical call with one key; all must get the same object."""
    if b != "payment" and not ctx.model.payments:
        ctx.stats["logical"] -= 1
        return
    results: list[Any] = []
    lock = threading.Lock()
    barrier = threading.Barrier(WORKERS)
    if b == "payment":
        amount = a % 10**6 + 1

        def call() -> Any:
            return ctx.client.create_payment(key, amount=amount, currency="EUR", confirm=True)

    elif b == "replay_refund" and ctx.model.refunds:
        old_key = sorted(ctx.model.refunds)[a % len(ctx.model.refunds)]
        want = ctx.model.refunds[old_key]
        key = old_key

        def call() -> Any:
            return ctx.client.create_refund(
                key, payment_id=want["payment_id"], amount=want["amount"]
            )

    else:
        open_payments = [p for p in ctx.model.payments.values() if ctx.model.refunded[p["id"]] == 0]
        if not open_payments:
            ctx.stats["logical"] -= 1
            return
        pay = open_payments[a % len(open_payments)]

        def call() -> Any:
            return ctx.client.create_refund(key, payment_id=pay["id"])  # the full refund

    def worker() -> None:
        barrier.wait()
        try:
            result = call()
        except Exception as exc:
            result = exc
        with lock:
            results.append(result)

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == [], errors
    assert all(r == results[0] for r in results)
    ctx.stats["concurrent_calls"] += WORKERS
    first = results[0]
    if b == "payment":
        ctx.model.payments[key] = {"amount": amount, "currency": "EUR", "id": first.payment_id}
    elif b == "replay_refund" and key in ctx.model.refunds:
        assert first.refund_id == ctx.model.refunds[key]["id"]
    else:
        ctx.model.refunds[key] = {
            "payment_id": pay["id"],
            "amount": pay["amount"],
            "id": first.refund_id,
        }
        ctx.model.refunded[pay["id"]] += pay["amount"]


OPERATIONS = {
    "payment": _payment,
    "replay_payment": _replay_payment,
    "refund": _refund,
    "replay_refund": _replay_refund,
    "transfer": _transfer,
    "replay_transfer": _replay_transfer,
    "reversal": _reversal,
    "exhausting_refund": _exhausting_refund,
    "concurrent": _concurrent,
}


def _apply(kind: str, a: Any, b: Any, key: str, ctx: Ctx) -> None:
    ctx.stats["logical"] += 1
    OPERATIONS[kind](ctx, key, a, b)


def _check(model: Model, hs: FakeHyperswitch, sp: FakeStripe) -> None:
    """The provider holds exactly one object per successful logical call, amounts equal."""
    with hs.lock:
        assert sorted(hs.payments) == sorted(p["id"] for p in model.payments.values())
        for want in model.payments.values():
            assert hs.payments[want["id"]]["amount"] == want["amount"]
        assert sorted(hs.refunds) == sorted(r["id"] for r in model.refunds.values())
        for want in model.refunds.values():
            stored = hs.refunds[want["id"]]
            assert (stored["amount"], stored["payment_id"]) == (want["amount"], want["payment_id"])
    with sp.lock:
        assert sorted(sp.transfers) == sorted(t["id"] for t in model.transfers.values())
        for want in model.transfers.values():
            stored = sp.transfers[want["id"]]
            assert stored["amount"] == want["amount"]
            assert stored["amount_reversed"] == model.reversed[want["id"]]
            reversal_ids = sorted(r["id"] for r in stored["reversals"]["data"])
            assert reversal_ids == sorted(
                r["id"] for r in model.reversals.values() if r["transfer"] == want["id"]
            )
