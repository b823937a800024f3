"""Pins the public surface of veza_storage: a rename or an accidental export fails here."""

import importlib.metadata
import importlib.resources

import veza_storage

EXPECTED_EXPORTS = {
    "Secret",
    "AsyncObjectReader",
    "AsyncResumableUploads",
    "AsyncStorage",
    "ByteRange",
    "Checkpoint",
    "ChecksumMismatchError",
    "ChunkConflictError",
    "ChunkError",
    "ChunkTooLargeError",
    "FileUploadSessionStore",
    "InMemoryUploadSessionStore",
    "InvalidKeyError",
    "InvalidMetadataError",
    "LocalStorage",
    "LocalURLSigner",
    "LostChunksError",
    "MigrationItem",
    "MigrationReport",
    "ObjectExistsError",
    "ObjectInfo",
    "ObjectNotFoundError",
    "ObjectReader",
    "OrphanReport",
    "RangeAnswer",
    "RangeNotSatisfiableError",
    "ResumableUploads",
    "S3Storage",
    "SignatureError",
    "SignedRequest",
    "Storage",
    "StorageConfig",
    "StorageConfigurationError",
    "StorageError",
    "SupportsUploadStaging",
    "SymlinkRefusedError",
    "TracedStorage",
    "UploadError",
    "UploadIncompleteError",
    "UploadNotFoundError",
    "UploadSession",
    "UploadSessionStore",
    "UploadStaging",
    "UploadStatus",
    "__version__",
    "answer_range",
    "aread_limited",
    "build_storage",
    "content_disposition",
    "find_orphans",
    "migrate",
    "parse_range",
    "read_limited",
    "validate_key",
}


def test_exports_are_exactly_the_pinned_set():
    assert set(veza_storage.__all__) == EXPECTED_EXPORTS


def test_sql_module_exports():
    import veza_storage.sql

    assert set(veza_storage.sql.__all__) == {
        "STORAGE_BACKENDS",
        "SQLUploadSessionStore",
        "StorageColumnsMixin",
        "upload_sessions_table",
    }


def test_every_export_resolves():
    assert [n for n in veza_storage.__all__ if not hasattr(veza_storage, n)] == []


def test_version_matches_installed_metadata():
    assert veza_storage.__version__ == importlib.metadata.version("veza-storage")


def test_ships_py_typed_marker():
    assert importlib.resources.files("veza_storage").joinpath("py.typed").is_file()


def test_errors_share_one_base_and_fit_builtins():
    assert issubclass(veza_storage.InvalidKeyError, ValueError)
    assert issubclass(veza_storage.ObjectNotFoundError, FileNotFoundError)
    assert issubclass(veza_storage.ObjectExistsError, FileExistsError)
    for name in ("InvalidKeyError", "ObjectNotFoundError", "ChunkError", "UploadNotFoundError"):
        assert issubclass(getattr(veza_storage, name), veza_storage.StorageError)


def test_both_backends_satisfy_the_protocol(tmp_path):
    assert isinstance(veza_storage.LocalStorage(tmp_path), veza_storage.Storage)


def test_both_backends_offer_upload_staging(tmp_path):
    assert isinstance(veza_storage.LocalStorage(tmp_path), veza_storage.SupportsUploadStaging)
    assert isinstance(
        veza_storage.LocalStorage(tmp_path).upload_staging(), veza_storage.UploadStaging
    )
