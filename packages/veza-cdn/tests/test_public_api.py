"""Pins the public surface of veza_cdn: a rename or an accidental export fails here."""

import importlib.metadata
import importlib.resources

import veza_cdn

EXPECTED_EXPORTS = {
    "provider_config",
    "R2Config",
    "ProviderConfig",
    "GoogleConfig",
    "CloudFrontConfig",
    "CloudflareConfig",
    "BunnyConfig",
    "AkamaiConfig",
    "CDN",
    "SIGNER_FACTORIES",
    "AkamaiSigner",
    "BunnySigner",
    "CDNConfig",
    "CDNConfigurationError",
    "CDNDisabledError",
    "CDNError",
    "CDNMetrics",
    "CachePolicy",
    "CanonicalPath",
    "CloudFrontSigner",
    "CloudFrontVerifier",
    "CloudflareHMACSigner",
    "ExpiryPolicy",
    "FailureReason",
    "GoogleCDNSigner",
    "InvalidTokenError",
    "PlaybackResolver",
    "PlaylistError",
    "R2Presigner",
    "Resolution",
    "Secret",
    "Signer",
    "SignerFactory",
    "SigningError",
    "UnknownMediaTypeError",
    "UnsafePathError",
    "Verification",
    "Verifier",
    "__version__",
    "build_signer",
    "cache_control_for",
    "canonical_path",
    "normalize_url",
    "sign_playlist",
    "CDNProbeReport",
    "ProbeCheck",
    "probe_cdn",
    "verify_presigned_url",
}


def test_exports_are_exactly_the_pinned_set():
    assert set(veza_cdn.__all__) == EXPECTED_EXPORTS


def test_testing_module_exports_are_pinned():
    import veza_cdn.testing

    assert set(veza_cdn.testing.__all__) == {
        "DENIED_HEADERS",
        "ORIGIN_SECRET_HEADER",
        "EdgeResponse",
        "LocalEdge",
        "hostile_paths",
        "secret_matches",
    }
    assert all(hasattr(veza_cdn.testing, name) for name in veza_cdn.testing.__all__)


def test_every_export_resolves():
    missing = [n for n in veza_cdn.__all__ if not hasattr(veza_cdn, n)]
    assert missing == []


def test_version_matches_installed_metadata():
    assert veza_cdn.__version__ == importlib.metadata.version("veza-cdn")


def test_ships_py_typed_marker():
    assert importlib.resources.files("veza_cdn").joinpath("py.typed").is_file()


def test_errors_share_one_base_and_subclass_the_fitting_builtin():
    for name in (
        "CDNConfigurationError",
        "SigningError",
        "InvalidTokenError",
        "PlaylistError",
        "UnsafePathError",
    ):
        error = getattr(veza_cdn, name)
        assert issubclass(error, veza_cdn.CDNError)
        assert issubclass(error, ValueError)
    assert issubclass(veza_cdn.CDNDisabledError, RuntimeError)


def test_console_script_is_declared():
    scripts = {
        ep.name: ep.value
        for ep in importlib.metadata.distribution("veza-cdn").entry_points
        if ep.group == "console_scripts"
    }
    assert scripts == {"veza-cdn": "veza_cdn._cli:main"}
