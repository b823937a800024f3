"""Pins the public surface of veza_ledger: a rename or an accidental export fails here."""

import importlib.metadata
import importlib.resources

import veza_ledger

EXPECTED_EXPORTS = {"__version__"}


def test_exports_are_exactly_the_pinned_set():
    assert set(veza_ledger.__all__) == EXPECTED_EXPORTS


def test_every_export_resolves():
    missing = [n for n in veza_ledger.__all__ if not hasattr(veza_ledger, n)]
    assert missing == []


def test_version_matches_installed_metadata():
    assert veza_ledger.__version__ == importlib.metadata.version("veza-ledger")


def test_ships_py_typed_marker():
    assert importlib.resources.files("veza_ledger").joinpath("py.typed").is_file()
