"""Pins the public surface of veza_cdn: a rename or an accidental export fails here."""

import importlib.metadata
import importlib.resources

import veza_cdn

EXPECTED_EXPORTS = {"__version__"}


def test_exports_are_exactly_the_pinned_set():
    assert set(veza_cdn.__all__) == EXPECTED_EXPORTS


def test_every_export_resolves():
    missing = [n for n in veza_cdn.__all__ if not hasattr(veza_cdn, n)]
    assert missing == []


def test_version_matches_installed_metadata():
    assert veza_cdn.__version__ == importlib.metadata.version("veza-cdn")


def test_ships_py_typed_marker():
    assert importlib.resources.files("veza_cdn").joinpath("py.typed").is_file()
