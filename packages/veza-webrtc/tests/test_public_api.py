"""Pins the public surface of veza_webrtc: a rename or an accidental export fails here."""

import importlib.metadata
import importlib.resources

import veza_webrtc

EXPECTED_EXPORTS = {"__version__"}


def test_exports_are_exactly_the_pinned_set():
    assert set(veza_webrtc.__all__) == EXPECTED_EXPORTS


def test_every_export_resolves():
    missing = [n for n in veza_webrtc.__all__ if not hasattr(veza_webrtc, n)]
    assert missing == []


def test_version_matches_installed_metadata():
    assert veza_webrtc.__version__ == importlib.metadata.version("veza-webrtc")


def test_ships_py_typed_marker():
    assert importlib.resources.files("veza_webrtc").joinpath("py.typed").is_file()
