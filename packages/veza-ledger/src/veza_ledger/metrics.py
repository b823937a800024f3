"""Ledger health metrics (the ``[metrics]`` extra: prometheus-client).

``from veza_ledger.metrics import LedgerMetrics``; see :class:`LedgerMetrics`.
"""

from veza_ledger._metrics import LedgerMetrics

__all__ = ["LedgerMetrics"]
