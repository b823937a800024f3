"""Stripe Connect through the official stripe package against a local Stripe fake.

Every test taking ``connect`` or ``make_connect`` runs on ``StripeConnect`` and on
``AsyncStripeConnect`` (see ``conftest.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
import stripe

from veza_payments import (
    APIConnectionError,
    AuthenticationError,
    IdempotencyConflictError,
    InvalidRequestError,
    MissingIdempotencyKeyError,
    NotFoundError,
    PaymentsConfigurationError,
    RetryPolicy,
    ServerError,
    StripeConnect,
)
from veza_payments._stripe import METADATA_KEY as METADATA
from veza_payments.testing import FakeStripe, Fault


def _posts(fake: FakeStripe, path: str) -> int:
    return sum(1 for r in fake.requests if r.method == "POST" and r.path == path)


def test_a_transfer_is_created_once_per_key(
    connect: StripeConnect, fake_stripe: FakeStripe
) -> None:
    transfer = connect.create_transfer(
        "transfer-row-1",
        amount=1500,
        currency="EUR",
        destination="acct_seller",
        transfer_group="order-9",
        metadata={"order": "9"},
    )
    again = connect.create_transfer(
        "transfer-row-1",
        amount=1500,
        currency="EUR",
        destination="acct_seller",
        transfer_group="order-9",
        metadata={"order": "9"},
    )
    assert again == transfer and len(fake_stripe.transfers) == 1
    stored = fake_stripe.transfers[transfer.id]
    assert (stored["amount"], stored["currency"], stored["destination"]) == (
        1500,
        "eur",
        "acct_seller",
    )
    assert stored["metadata"] == {"order": "9", "veza_idempotency_key": "transfer-row-1"}
    keys = [r.headers.get("idempotency-key") for r in fake_stripe.requests]
    assert keys == ["transfer:transfer-row-1"] * 2


def test_the_stripe_module_global_state_is_untouched(connect: StripeConnect) -> None:
    connect.create_transfer("t", amount=1, currency="EUR", destination="acct_1")
    assert stripe.api_key is None


@pytest.mark.parametrize(
    "fault",
    [
        Fault("drop", after_commit=True),
        Fault("drop", after_commit=False),
        Fault("status", status=500, after_commit=True),
        Fault("status", status=502, after_commit=True),
        Fault("status", status=503, after_commit=False),
        Fault("status", status=429, retry_after=1),
        Fault("slow", delay=0.8, after_commit=True),
    ],
    ids=lambda f: f"{f.kind}-{f.status}-{'after' if f.after_commit else 'before'}",
)
def test_faults_never_pay_twice(
    connect: StripeConnect, fake_stripe: FakeStripe, fault: Fault
) -> None:
    fake_stripe.inject(fault)
    transfer = connect.create_transfer("row-5", amount=700, currency="EUR", destination="acct_s")
    assert list(fake_stripe.transfers) == [transfer.id]
    assert transfer.amount == 700 and fake_stripe.pending_faults == 0


def test_a_reused_key_with_other_parameters_is_a_conflict(
    connect: StripeConnect, fake_stripe: FakeStripe
) -> None:
    connect.create_transfer("row-1", amount=100, currency="EUR", destination="acct_1")
    with pytest.raises(IdempotencyConflictError) as info:
        connect.create_transfer("row-1", amount=101, currency="EUR", destination="acct_1")
    error = info.value
    assert error.provider == "stripe" and error.status == 400
    assert error.request_id and error.request_id.startswith("req_")
    assert error.requested["amount"] == 101
    assert len(fake_stripe.transfers) == 1


def test_a_transfer_and_its_reversal_may_share_the_row_id(
    connect: StripeConnect, fake_stripe: FakeStripe
) -> None:
    transfer = connect.create_transfer("row-7", amount=1000, currency="EUR", destination="acct_1")
    fake_stripe.inject(Fault("drop", after_commit=True, path_prefix="/v1/transfers/"))
    reversal = connect.reverse_transfer("row-7", transfer.id, amount=400)
    again = connect.reverse_transfer("row-7", transfer.id, amount=400)
    assert again == reversal and reversal.transfer == transfer.id and reversal.amount == 400
    assert len(fake_stripe.reversals_of(transfer.id)) == 1
    assert fake_stripe.transfers[transfer.id]["amount_reversed"] == 400
    rest = connect.reverse_transfer("row-7-rest", transfer.id)  # None: all that remains
    assert rest.amount == 600 and fake_stripe.transfers[transfer.id]["reversed"]
    with pytest.raises(InvalidRequestError) as info:
        connect.reverse_transfer("row-7-more", transfer.id, amount=1)
    assert info.value.code == "amount_too_large"


def test_payouts_go_to_the_connected_account(
    connect: StripeConnect, fake_stripe: FakeStripe
) -> None:
    connect.create_transfer("fund", amount=2500, currency="EUR", destination="acct_seller")
    fake_stripe.inject(Fault("status", status=503, after_commit=True))
    payout = connect.create_payout(
        "payout-row-1", amount=2500, currency="EUR", stripe_account="acct_seller", method="standard"
    )
    assert payout.id.startswith("po_") and payout.stripe_account == "acct_seller"
    assert len(fake_stripe.payouts) == 1
    assert fake_stripe.requests[-1].headers["stripe-account"] == "acct_seller"
    assert fake_stripe.payouts[payout.id]["account"] == "acct_seller"


def test_find_transfers_pages_and_filters_metadata_client_side(
    connect: StripeConnect, fake_stripe: FakeStripe
) -> None:
    for i in range(230):
        connect.create_transfer(
            f"row-{i}",
            amount=100 + i,
            currency="EUR",
            destination="acct_a" if i % 2 else "acct_b",
            metadata={"order": str(i % 5)},
        )
    found = list(connect.find_transfers(destination="acct_a", metadata={"order": "3"}))
    expected = {i for i in range(230) if i % 2 and i % 5 == 3}
    assert {t.amount - 100 for t in found} == expected
    assert all(t.destination == "acct_a" for t in found)
    lists = [r for r in fake_stripe.requests if r.method == "GET"]
    assert len(lists) == 2  # 115 transfers to acct_a: two pages of at most 100
    one = list(connect.find_transfers(metadata={"veza_idempotency_key": "row-42"}))
    assert [t.amount for t in one] == [142]


def test_find_transfers_by_created_range(connect: StripeConnect, fake_stripe: FakeStripe) -> None:
    made = [
        connect.create_transfer(f"r{i}", amount=10, currency="EUR", destination="acct_1")
        for i in range(5)
    ]
    created = [t.created for t in made]
    assert all(c is not None for c in created)
    window = {"gte": created[1], "lt": created[4]}
    got = list(connect.find_transfers(created=window))  # type: ignore[arg-type]
    assert [t.id for t in got] == [t.id for t in reversed(made[1:4])]


def test_errors_map_into_the_hierarchy(
    fake_stripe: FakeStripe, sleeps: list[float], make_connect: Callable[..., StripeConnect]
) -> None:
    with (
        make_connect("sk_test_wrong", base_url=fake_stripe.url, sleep=sleeps.append) as bad,
        pytest.raises(AuthenticationError) as auth,
    ):
        bad.create_transfer("k", amount=1, currency="EUR", destination="acct_1")
    assert auth.value.status == 401 and "sk_test_wrong" not in str(auth.value)
    with make_connect(
        fake_stripe.api_key, base_url=fake_stripe.url, max_retries=2, sleep=sleeps.append
    ) as c:
        with pytest.raises(NotFoundError) as missing:
            c.retrieve_transfer("tr_nope")
        assert missing.value.code == "resource_missing" and missing.value.provider == "stripe"
        fake_stripe.inject(*[Fault("status", status=500) for _ in range(3)])
        with pytest.raises(ServerError):
            c.create_transfer("k2", amount=1, currency="EUR", destination="acct_1")
    assert len(sleeps) == 2  # three 500s, two retries, then the error


def test_connection_failures_map_to_api_connection_error(
    sleeps: list[float], make_connect: Callable[..., StripeConnect]
) -> None:
    with FakeStripe() as gone:
        url, key = gone.url, gone.api_key
    with (
        make_connect(key, base_url=url, max_retries=1, sleep=sleeps.append) as c,
        pytest.raises(APIConnectionError) as info,
    ):
        c.retrieve_transfer("tr_1")
    assert info.value.provider == "stripe" and len(sleeps) == 1


@pytest.mark.parametrize("bad", [None, "", "  "])
def test_keys_are_mandatory(
    connect: StripeConnect, fake_stripe: FakeStripe, bad: str | None
) -> None:
    with pytest.raises(MissingIdempotencyKeyError):
        connect.create_transfer(bad, amount=1, currency="EUR", destination="acct_1")  # type: ignore[arg-type]
    with pytest.raises(MissingIdempotencyKeyError):
        connect.reverse_transfer(bad, "tr_1")  # type: ignore[arg-type]
    with pytest.raises(MissingIdempotencyKeyError):
        connect.create_payout(bad, amount=1, currency="EUR", stripe_account="acct_1")  # type: ignore[arg-type]
    assert fake_stripe.requests == []


def test_configuration_is_validated(
    fake_stripe: FakeStripe, make_connect: Callable[..., StripeConnect]
) -> None:
    with pytest.raises(PaymentsConfigurationError, match="api_key"):
        make_connect("")
    with pytest.raises(PaymentsConfigurationError, match="max_retries"):
        make_connect("sk", max_retries=-2)
    c = make_connect("sk_live_secret", base_url=fake_stripe.url, max_retries=RetryPolicy(total=1))
    assert "sk_live_secret" not in repr(c)
    with pytest.raises(PaymentsConfigurationError, match="at most 200"):
        c.create_transfer("x" * 201, amount=1, currency="EUR", destination="acct_1")
    c.close()


def test_the_fake_replays_like_stripe(fake_stripe: FakeStripe) -> None:
    headers = {"Authorization": f"Bearer {fake_stripe.api_key}", "Idempotency-Key": "k1"}
    form = {"amount": "5", "currency": "eur", "destination": "acct_1"}
    first = httpx.post(f"{fake_stripe.url}/v1/transfers", data=form, headers=headers)
    second = httpx.post(f"{fake_stripe.url}/v1/transfers", data=form, headers=headers)
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    other = httpx.post(
        f"{fake_stripe.url}/v1/transfers", data={**form, "amount": "6"}, headers=headers
    )
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"
    assert len(fake_stripe.transfers) == 1


# ---------------------------------------------------------------------------- the fake itself
# Stripe's documented idempotency (docs.stripe.com/api/idempotent_requests): keys are
# scoped to the account, the first result is saved once the endpoint began executing
# (500s included) and replayed, parameters are compared, validation failures and
# concurrent conflicts are not saved, and keys may be pruned once 24 hours old.


def _raw(
    fake: FakeStripe, path: str, form: dict[str, str], key: str, account: str | None = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {fake.api_key}", "Idempotency-Key": key}
    if account:
        headers["Stripe-Account"] = account
    return httpx.post(f"{fake.url}{path}", data=form, headers=headers)


def test_the_fake_scopes_keys_per_account_not_per_path(fake_stripe: FakeStripe) -> None:
    first = _raw(
        fake_stripe,
        "/v1/transfers",
        {"amount": "900", "currency": "eur", "destination": "acct_1"},
        "k",
    )
    assert first.status_code == 200
    other_path = _raw(
        fake_stripe, f"/v1/transfers/{first.json()['id']}/reversals", {"amount": "100"}, "k"
    )
    assert other_path.status_code == 400
    assert other_path.json()["error"]["type"] == "idempotency_error"
    assert fake_stripe.transfers[first.json()["id"]]["amount_reversed"] == 0
    # The same key on a connected account is another key.
    payout = _raw(
        fake_stripe, "/v1/payouts", {"amount": "100", "currency": "eur"}, "k", account="acct_1"
    )
    assert payout.status_code == 200 and len(fake_stripe.payouts) == 1


def test_the_fake_refuses_a_reversal_key_reused_with_another_amount(
    fake_stripe: FakeStripe,
) -> None:
    tr = _raw(
        fake_stripe,
        "/v1/transfers",
        {"amount": "850", "currency": "eur", "destination": "acct_1"},
        "t",
    ).json()
    path = f"/v1/transfers/{tr['id']}/reversals"
    assert _raw(fake_stripe, path, {"amount": "340"}, "r").status_code == 200
    again = _raw(fake_stripe, path, {"amount": "510"}, "r")
    assert again.status_code == 400 and again.json()["error"]["type"] == "idempotency_error"
    assert fake_stripe.transfers[tr["id"]]["amount_reversed"] == 340


def test_the_fake_replays_a_500_and_forgets_keys_after_the_ttl(fake_stripe: FakeStripe) -> None:
    form = {"amount": "500", "currency": "eur", "destination": "acct_1"}
    fake_stripe.fail_inside(500, path_prefix="/v1/transfers")
    first = _raw(fake_stripe, "/v1/transfers", form, "k5")
    replay = _raw(fake_stripe, "/v1/transfers", form, "k5")
    assert (first.status_code, replay.status_code) == (500, 500)
    assert replay.headers["Idempotent-Replayed"] == "true" and fake_stripe.transfers == {}
    fake_stripe.advance(24 * 3600 - 1)
    assert _raw(fake_stripe, "/v1/transfers", form, "k5").status_code == 500
    fake_stripe.advance(1)  # the key is 24 hours old: pruned, the request is new
    assert _raw(fake_stripe, "/v1/transfers", form, "k5").status_code == 200
    assert len(fake_stripe.transfers) == 1


def test_the_fake_pays_twice_when_a_key_is_reused_after_the_ttl(fake_stripe: FakeStripe) -> None:
    form = {"amount": "500", "currency": "eur", "destination": "acct_1"}
    one = _raw(fake_stripe, "/v1/transfers", form, "k").json()
    fake_stripe.advance(3600)
    assert _raw(fake_stripe, "/v1/transfers", form, "k").json()["id"] == one["id"]
    fake_stripe.advance(24 * 3600)
    two = _raw(fake_stripe, "/v1/transfers", form, "k").json()
    assert two["id"] != one["id"] and len(fake_stripe.transfers) == 2
    assert two["created"] >= one["created"] + 25 * 3600  # created on the fake's clock


def test_the_fake_does_not_store_validation_errors(fake_stripe: FakeStripe) -> None:
    bad = _raw(
        fake_stripe,
        "/v1/transfers",
        {"amount": "-1", "currency": "eur", "destination": "acct_1"},
        "kv",
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "parameter_invalid_integer"
    good = _raw(
        fake_stripe,
        "/v1/transfers",
        {"amount": "1", "currency": "eur", "destination": "acct_1"},
        "kv",
    )
    assert good.status_code == 200 and "Idempotent-Replayed" not in good.headers


def test_the_fake_needs_the_destination_balance_to_reverse(fake_stripe: FakeStripe) -> None:
    tr = _raw(
        fake_stripe,
        "/v1/transfers",
        {"amount": "1000", "currency": "eur", "destination": "acct_s"},
        "t",
    ).json()
    assert fake_stripe.balance("acct_s", "eur") == 1000
    paid = _raw(
        fake_stripe, "/v1/payouts", {"amount": "800", "currency": "eur"}, "p", account="acct_s"
    )
    assert paid.status_code == 200 and fake_stripe.balance("acct_s", "eur") == 200
    path = f"/v1/transfers/{tr['id']}/reversals"
    refused = _raw(fake_stripe, path, {"amount": "500"}, "r")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "balance_insufficient"
    replay = _raw(fake_stripe, path, {"amount": "500"}, "r")  # the endpoint ran: saved
    assert replay.status_code == 400 and replay.headers["Idempotent-Replayed"] == "true"
    too_much = _raw(
        fake_stripe, "/v1/payouts", {"amount": "201", "currency": "eur"}, "p2", account="acct_s"
    )
    assert too_much.json()["error"]["code"] == "balance_insufficient"
    assert _raw(fake_stripe, path, {"amount": "200"}, "r2").status_code == 200
    assert fake_stripe.balance("acct_s", "eur") == 0


def test_the_fake_can_block_inside_a_call(fake_stripe: FakeStripe) -> None:
    import threading

    hold = fake_stripe.hold("/v1/transfers")
    results: list[int] = []
    thread = threading.Thread(
        target=lambda: results.append(
            _raw(
                fake_stripe,
                "/v1/transfers",
                {"amount": "5", "currency": "eur", "destination": "acct_1"},
                "kh",
            ).status_code
        )
    )
    thread.start()
    assert hold.entered.wait(5)
    assert fake_stripe.transfers == {} and results == []
    hold.release()
    thread.join(5)
    assert results == [200] and len(fake_stripe.transfers) == 1


def test_the_async_client_sends_what_the_sync_one_sends() -> None:
    """Same method, path, query, form body and headers; only stripe-python's telemetry
    names its transport (``"httplib"``) and marks the call ``async``."""
    import asyncio

    from veza_payments import AsyncStripeConnect

    def calls(fake: FakeStripe) -> list[tuple[str, str, str, bytes, dict[str, str]]]:
        told = {"x-stripe-client-user-agent", "x-stripe-client-telemetry", "host"}
        return [
            (
                r.method,
                r.path,
                r.query,
                r.body,
                {k: v for k, v in r.headers.items() if k not in told},
            )
            for r in fake.requests
        ]

    with FakeStripe() as one, FakeStripe() as two:
        with StripeConnect(one.api_key, base_url=one.url) as sync:
            sync.create_transfer("k", amount=5, currency="EUR", destination="acct_1")
            list(sync.find_transfers(created={"gte": 1}, metadata={"a": "b"}))

        async def run() -> None:
            async with AsyncStripeConnect(two.api_key, base_url=two.url) as connect:
                await connect.create_transfer("k", amount=5, currency="EUR", destination="acct_1")
                [t async for t in connect.find_transfers(created={"gte": 1}, metadata={"a": "b"})]

        asyncio.run(run())
        assert len(calls(one)) == 2
        assert calls(two) == calls(one)


def test_the_async_client_does_no_blocking_io_on_the_loop(fake_stripe: FakeStripe) -> None:
    """Transfers, a reversal, a payout and paged reads, watched by audit hooks."""
    import asyncio

    from veza_loopwatch import loop_io_watch
    from veza_payments import AsyncStripeConnect

    async def flow(connect: AsyncStripeConnect, row: str) -> list[str]:
        transfer = await connect.create_transfer(
            row, amount=900, currency="EUR", destination="acct_w"
        )
        await connect.reverse_transfer(row, transfer.id, amount=100)
        await connect.create_payout(row, amount=100, currency="EUR", stripe_account="acct_w")
        reversals = [r.id async for r in connect.list_reversals(transfer.id)]
        found = [t.id async for t in connect.find_transfers(metadata={METADATA: row})]
        return [*reversals, *found]

    async def main() -> tuple[list[str], list[str]]:
        async with AsyncStripeConnect(fake_stripe.api_key, base_url=fake_stripe.url) as warm:
            await flow(warm, "warm")  # first imports
        # A fresh client (built off the watch: it reads Stripe's CA bundle) with no pooled
        # connection, so a blocking connect on the loop would be seen.
        async with AsyncStripeConnect(fake_stripe.api_key, base_url=fake_stripe.url) as c:
            with loop_io_watch() as seen:
                ids = await flow(c, "watched")
        return ids, seen

    ids, seen = asyncio.run(main())
    assert len(ids) == 2 and seen == []
