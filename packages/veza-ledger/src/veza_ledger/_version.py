"""The single source of veza-ledger's version (read by hatchling at build time)."""

__version__ = "0.1.0"
