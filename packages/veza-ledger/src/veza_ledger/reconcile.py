"""Reconciliation against the providers: the rules, their settings, and the sweep."""

from veza_ledger._rules import RULES, Problem, ReconcileSettings, Rule
from veza_ledger._sweep import SweepItem, SweepReport, run_sweep

__all__ = ["RULES", "Problem", "ReconcileSettings", "Rule", "SweepItem", "SweepReport", "run_sweep"]
