"""The upload state machine, explored by hypothesis: any order of sends, resends,
conflicting sends and completes keeps the invariants.

* a chunk's first accepted bytes are its bytes for good: the same bytes again succeed,
  other bytes raise ``ChunkConflictError``;
* ``complete`` refuses while chunks are missing, then publishes exactly the accepted
  bytes with their SHA-256, and returns the same object when called again;
* a completed upload takes no more chunks.
"""

import hashlib
import shutil
import tempfile

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from veza_storage import (
    ChunkConflictError,
    InMemoryUploadSessionStore,
    LocalStorage,
    ResumableUploads,
    UploadError,
    UploadIncompleteError,
)

KiB = 1024
CHUNK = 64 * KiB
TOTAL = 3 * CHUNK + 100
COUNT = 4


def version(index: int, which: int) -> bytes:
    size = CHUNK if index < COUNT - 1 else TOTAL - (COUNT - 1) * CHUNK
    return bytes([index * 16 + which]) * size


class Uploads(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="veza-upload-sm-")
        self.storage = LocalStorage(self.directory, fsync=False)
        self.uploads = ResumableUploads(self.storage, InMemoryUploadSessionStore())
        self.session = self.uploads.begin("sm/t.bin", TOTAL, chunk_size=CHUNK, content_type="x/y")
        self.accepted: dict[int, int] = {}
        self.published = None

    def teardown(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    @rule(index=st.integers(0, COUNT - 1), which=st.integers(0, 2))
    def send(self, index: int, which: int) -> None:
        data = version(index, which)
        if self.published is not None:
            with pytest.raises(UploadError, match="completed"):
                self.uploads.put_chunk(self.session, index, data=data)
        elif self.accepted.get(index, which) != which:
            with pytest.raises(ChunkConflictError):
                self.uploads.put_chunk(self.session, index, data=data)
        else:
            status = self.uploads.put_chunk(self.session, index, data=data)
            self.accepted[index] = which
            assert set(status.received) == set(self.accepted)

    @rule()
    def complete(self) -> None:
        if self.published is None and len(self.accepted) < COUNT:
            with pytest.raises(UploadIncompleteError, match="missing"):
                self.uploads.complete(self.session)
            return
        info = self.uploads.complete(self.session)
        if self.published is not None:
            assert info == self.published  # idempotent
        self.published = info

    @precondition(lambda self: self.published is not None)
    @invariant()
    def the_object_is_exactly_the_accepted_chunks(self) -> None:
        expected = b"".join(version(i, self.accepted[i]) for i in range(COUNT))
        with self.storage.open("sm/t.bin") as reader:
            stored = reader.read()
        assert stored == expected
        assert self.published.sha256 == hashlib.sha256(expected).hexdigest()


Uploads.TestCase.settings = settings(max_examples=25, stateful_step_count=14, deadline=None)
test_upload_state_machine = Uploads.TestCase
