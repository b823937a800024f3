"""SQLAlchemy helpers for veza-storage (needs ``veza-storage[sqlalchemy]``).

``StorageColumnsMixin`` for the track table's ``storage_backend``/``storage_key``
columns, and ``SQLUploadSessionStore`` for upload sessions shared through a database.
"""

from veza_storage._sql import (
    STORAGE_BACKENDS,
    SQLUploadSessionStore,
    StorageColumnsMixin,
    upload_sessions_table,
)

__all__ = [
    "STORAGE_BACKENDS",
    "SQLUploadSessionStore",
    "StorageColumnsMixin",
    "upload_sessions_table",
]
