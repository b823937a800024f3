"""veza-ledger: a SQLAlchemy money ledger.

State machines, a double-entry journal, reconciliation against the payment
providers, sweeps safe under many workers.
"""

from veza_ledger._version import __version__

__all__ = ["__version__"]
