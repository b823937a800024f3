"""veza-storage: one object-storage API over local disk and S3.

Streaming and resumable chunked uploads, presigned GET and safe migration from
local disk to S3/MinIO/R2.
"""

from veza_storage._async import AsyncObjectReader, AsyncResumableUploads, AsyncStorage
from veza_storage._capabilities import SupportsUploadStaging, UploadStaging
from veza_storage._config import StorageConfig, build_storage
from veza_storage._disposition import content_disposition
from veza_storage._errors import (
    ChecksumMismatchError,
    ChunkConflictError,
    ChunkError,
    ChunkTooLargeError,
    InvalidKeyError,
    InvalidMetadataError,
    ObjectExistsError,
    ObjectNotFoundError,
    RangeNotSatisfiableError,
    SignatureError,
    StorageConfigurationError,
    StorageError,
    UploadError,
    UploadIncompleteError,
    UploadNotFoundError,
)
from veza_storage._fs import SymlinkRefusedError
from veza_storage._keys import validate_key
from veza_storage._limits import aread_limited, read_limited
from veza_storage._local import LocalStorage
from veza_storage._migrate import Checkpoint, MigrationItem, MigrationReport, migrate
from veza_storage._orphans import OrphanReport, find_orphans
from veza_storage._protocol import Storage
from veza_storage._ranges import RangeAnswer, answer_range, parse_range
from veza_storage._s3 import S3Storage
from veza_storage._secret import Secret
from veza_storage._sessions import (
    FileUploadSessionStore,
    InMemoryUploadSessionStore,
    UploadSession,
    UploadSessionStore,
)
from veza_storage._signing import LocalURLSigner, SignedRequest
from veza_storage._staging import LostChunksError
from veza_storage._stream import ObjectReader
from veza_storage._traced import TracedStorage
from veza_storage._types import ByteRange, ObjectInfo
from veza_storage._uploads import ResumableUploads, UploadStatus
from veza_storage._version import __version__

__all__ = [
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
    "Secret",
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
]
