"""Pins the public surface of veza_payments: a rename or an accidental export fails here."""

import importlib.metadata
import importlib.resources

import veza_payments

EXPECTED_EXPORTS = {"__version__"}


def test_exports_are_exactly_the_pinned_set():
    assert set(veza_payments.__all__) == EXPECTED_EXPORTS


def test_every_export_resolves():
    missing = [n for n in veza_payments.__all__ if not hasattr(veza_payments, n)]
    assert missing == []


def test_version_matches_installed_metadata():
    assert veza_payments.__version__ == importlib.metadata.version("veza-payments")


def test_ships_py_typed_marker():
    assert importlib.resources.files("veza_payments").joinpath("py.typed").is_file()
