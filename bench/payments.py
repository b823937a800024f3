"""veza-payments: webhook verification and client overhead, beside the alternatives.

Run: ``nox -s bench -- payments``. Rows:

* ``verify_signature`` on a 64 KiB body (the intake's cap) beside the floor a user would
  write: ``hmac.new(key, body, sha512).hexdigest()`` and one ``compare_digest``;
* ``WebhookIntake.handle`` for a typical 3 KiB delivery (verify, parse, dispatch, record)
  beside verification alone;
* ``HyperswitchClient.retrieve_payment`` and ``create_payment`` beside a bare
  ``httpx.Client`` request to the same local Hyperswitch fake, interleaved, so the
  difference is the client's own overhead (ids, retry bookkeeping, parsing into
  ``Payment``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import platform
import statistics
import sys
import time
import timeit
import uuid

import httpx

from veza_payments import (
    HyperswitchClient,
    InMemoryWebhookLog,
    WebhookIntake,
    sign_payload,
    verify_signature,
)
from veza_payments.testing import FakeHyperswitch

KEY = "a-payment-response-hash-key-of-typical-length-0123456789"


def per_call(fn) -> float:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=5, number=number)) / number


def interleaved(a, b, rounds: int = 2000) -> tuple[float, float]:
    """Median seconds per call of ``a`` and ``b``, alternating so drift hits both."""
    ta: list[float] = []
    tb: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        a()
        ta.append(time.perf_counter() - start)
        start = time.perf_counter()
        b()
        tb.append(time.perf_counter() - start)
    return statistics.median(ta), statistics.median(tb)


def main() -> None:
    body = json.dumps({"event_type": "payment_succeeded", "pad": "x" * 65400}).encode()[: 64 * 1024]
    signature = sign_payload(body, KEY)
    key_bytes = KEY.encode()

    def floor() -> bool:
        expected = hmac.new(key_bytes, body, hashlib.sha512).hexdigest()
        return hmac.compare_digest(expected, signature)

    if not (floor() and verify_signature(body, signature, keys=KEY)):
        raise SystemExit("the two verifications disagree")
    verify_floor = per_call(floor)
    verify_ours = per_call(lambda: verify_signature(body, signature, keys=KEY))

    delivery = json.dumps(
        {
            "merchant_id": "m",
            "event_id": "evt_1",
            "event_type": "payment_succeeded",
            "content": {
                "type": "payment_details",
                "object": {"payment_id": "p", "pad": "y" * 3000},
            },
        }
    ).encode()
    headers = {"X-Webhook-Signature-512": sign_payload(delivery, KEY), "X-Request-Id": "r"}
    intake = WebhookIntake(InMemoryWebhookLog(), KEY)
    intake.on("payment_succeeded", lambda _event: None)
    handle = per_call(lambda: intake.handle(headers, delivery, source_ip="127.0.0.1"))
    verify_small = per_call(
        lambda: verify_signature(delivery, headers["X-Webhook-Signature-512"], keys=KEY)
    )

    with FakeHyperswitch() as fake:
        client = HyperswitchClient(fake.api_key, base_url=fake.url)
        bare = httpx.Client(base_url=fake.url, headers={"api-key": fake.api_key})
        payment = client.create_payment("bench-order", amount=1000, currency="EUR", confirm=True)
        path = f"/payments/{payment.payment_id}"
        for _ in range(200):  # warm connections both ways
            client.retrieve_payment(payment.payment_id)
            bare.get(path).json()
        read_ours, read_bare = interleaved(
            lambda: client.retrieve_payment(payment.payment_id), lambda: bare.get(path).json()
        )

        def ours_create() -> None:
            client.create_payment(uuid.uuid4().hex, amount=1000, currency="EUR")

        def bare_create() -> None:
            bare.post(
                "/payments",
                json={
                    "payment_id": "p_" + uuid.uuid4().hex[:20],
                    "amount": 1000,
                    "currency": "EUR",
                    "confirm": False,
                },
                headers={"idempotency-key": "k"},
            ).json()

        create_ours, create_bare = interleaved(ours_create, bare_create, rounds=1000)
        client.close()
        bare.close()

    print(
        f"# veza-payments benchmark: {platform.python_implementation()} "
        f"{sys.version.split()[0]}, {platform.machine()}, {os.cpu_count()} CPUs"
    )
    rows = [
        (
            "verify_signature, 64 KiB body",
            verify_ours,
            "floor: hmac.new + compare_digest",
            verify_floor,
        ),
        (
            "WebhookIntake.handle, 3 KiB delivery",
            handle,
            "verify_signature alone, 3 KiB",
            verify_small,
        ),
        ("retrieve_payment (local fake)", read_ours, "bare httpx GET + .json()", read_bare),
        ("create_payment (local fake)", create_ours, "bare httpx POST + .json()", create_bare),
    ]
    print(f"{'operation':38} {'veza':>10}  {'against':34} {'theirs':>10}  ratio  overhead")
    for name, mine, against, theirs in rows:
        print(
            f"{name:38} {mine * 1e6:>8.1f}µs  {against:34} {theirs * 1e6:>8.1f}µs  "
            f"{mine / theirs:.2f}x  {(mine - theirs) * 1e6:+.1f}µs"
        )


if __name__ == "__main__":
    main()
