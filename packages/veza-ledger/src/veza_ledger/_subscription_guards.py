"""The subscription activation guard in the database (PostgreSQL).

A subscription's ``active`` status is a promise that the subscriber paid for it. The
library checks that before every activation, but a console, a script or a forced
transition writes rows too, so on PostgreSQL a trigger refuses, whoever connects, an
``active`` row whose ``payment_order_id`` is not:

* an order of the subscriber (``buyer_id = user_id``);
* paid (``paid`` or ``partially_refunded``), with at least ``price_amount`` captured
  and not refunded, in ``price_currency`` when it is set;
* free of a dispute that is open or was lost.

One order activating two subscriptions is refused by the partial unique index on
``payment_order_id`` (both databases). SQLite has no such trigger here: the library's
own check (:meth:`~veza_ledger.Ledger.activate_subscription`) is all there is.

The same definition serves ``metadata.create_all``, the schema check and the tests;
migration 0005 keeps its own frozen copy.
"""

from __future__ import annotations

from veza_ledger._guards import TriggerSpec

ACTIVATION_FUNCTION = "ledger_subscription_activation"
DISPUTED_STATUSES = ("opened", "challenged", "lost", "accepted", "expired")
"""Dispute statuses that make an order unfit to activate (held or lost money)."""

_PG_ACTIVATION_FUNCTION = (  # the same text as migration 0005's frozen copy
    "CREATE OR REPLACE FUNCTION ledger_subscription_activation() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ DECLARE o record; BEGIN "
    "SELECT buyer_id, status, currency, captured_amount, refunded_amount INTO o "
    "FROM ledger_orders WHERE id = NEW.payment_order_id; "
    "IF NOT FOUND THEN RAISE EXCEPTION "
    "'subscription % cannot be active without its order', NEW.id "
    "USING ERRCODE = 'check_violation'; END IF; "
    "IF o.buyer_id <> NEW.user_id THEN RAISE EXCEPTION "
    "'subscription %: order % was paid by another user', NEW.id, NEW.payment_order_id "
    "USING ERRCODE = 'check_violation'; END IF; "
    "IF o.status NOT IN ('paid', 'partially_refunded') THEN RAISE EXCEPTION "
    "'subscription %: order % is %, not paid', NEW.id, NEW.payment_order_id, o.status "
    "USING ERRCODE = 'check_violation'; END IF; "
    "IF NEW.price_currency IS NOT NULL AND o.currency <> NEW.price_currency THEN "
    "RAISE EXCEPTION 'subscription %: order % is in %, the plan in %', NEW.id, "
    "NEW.payment_order_id, o.currency, NEW.price_currency "
    "USING ERRCODE = 'check_violation'; END IF; "
    "IF o.captured_amount - o.refunded_amount < NEW.price_amount THEN RAISE EXCEPTION "
    "'subscription %: order % holds % of the plan''s price %', NEW.id, "
    "NEW.payment_order_id, o.captured_amount - o.refunded_amount, NEW.price_amount "
    "USING ERRCODE = 'check_violation'; END IF; "
    "IF EXISTS (SELECT 1 FROM ledger_disputes d WHERE d.order_id = NEW.payment_order_id "
    "AND d.status IN ('opened', 'challenged', 'lost', 'accepted', 'expired')) THEN "
    "RAISE EXCEPTION 'subscription %: order % is disputed', NEW.id, NEW.payment_order_id "
    "USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END $$"
)
SUBSCRIPTION_GUARDS: tuple[TriggerSpec, ...] = (
    TriggerSpec(
        "ledger_subscriptions_activation",
        "ledger_subscriptions",
        "postgresql",
        (
            _PG_ACTIVATION_FUNCTION,
            (
                "CREATE TRIGGER ledger_subscriptions_activation BEFORE INSERT OR UPDATE OF "
                "status, payment_order_id ON ledger_subscriptions FOR EACH ROW "
                "WHEN (NEW.status = 'active') "
                f"EXECUTE FUNCTION {ACTIVATION_FUNCTION}()"
            ),
        ),
        ("DROP TRIGGER IF EXISTS ledger_subscriptions_activation ON ledger_subscriptions",),
    ),
)
"""The subscription triggers (PostgreSQL only)."""
