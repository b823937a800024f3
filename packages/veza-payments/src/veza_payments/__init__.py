"""veza-payments: payments that cannot double-charge.

A Hyperswitch client with real idempotency, webhook verification and forensic
intake, and Stripe Connect transfers, reversals and payouts.
"""

from veza_payments._version import __version__

__all__ = ["__version__"]
