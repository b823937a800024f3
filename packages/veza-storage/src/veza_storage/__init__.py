"""veza-storage: one object-storage API over local disk and S3.

Streaming and resumable chunked uploads, presigned GET and safe migration from
local disk to S3/MinIO/R2.
"""

from veza_storage._version import __version__

__all__ = ["__version__"]
