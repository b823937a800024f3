"""Pins the public surface of veza_storage: a rename or an accidental export fails here."""

import importlib.metadata
import importlib.resources

import veza_storage

EXPECTED_EXPORTS = {"__version__"}


def test_exports_are_exactly_the_pinned_set():
    assert set(veza_storage.__all__) == EXPECTED_EXPORTS


def test_every_export_resolves():
    missing = [n for n in veza_storage.__all__ if not hasattr(veza_storage, n)]
    assert missing == []


def test_version_matches_installed_metadata():
    assert veza_storage.__version__ == importlib.metadata.version("veza-storage")


def test_ships_py_typed_marker():
    assert importlib.resources.files("veza_storage").joinpath("py.typed").is_file()
