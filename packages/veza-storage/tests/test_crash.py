"""A writer killed with SIGKILL never leaves a partial object visible, and uploads resume.

The writer is a real subprocess. It announces when it is at the dangerous point (data
streaming in ``put``; the assembled bytes written but not yet published in
``complete``) and the test kills it there.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys

import pytest

from veza_storage import FileUploadSessionStore, LocalStorage, ResumableUploads, S3Storage

MiB = 1024 * 1024

WRITER = r"""
import json, os, sys, time
spec = json.loads(sys.argv[1])
from veza_storage import LocalStorage, S3Storage, ResumableUploads, FileUploadSessionStore
if spec["backend"] == "local":
    storage = LocalStorage(spec["root"])
else:
    storage = S3Storage(spec["bucket"], endpoint_url=spec["endpoint"],
                        access_key_id="testing-access-key",
                        secret_access_key="testing-secret-key", profile="minio",
                        multipart_threshold=5 * 1024 * 1024, part_size=5 * 1024 * 1024)

def announce(word):
    print(word, flush=True)
    time.sleep(60)  # the test kills us here

if spec["mode"] == "put":
    def stream():
        for i in range(40):
            yield os.urandom(1024 * 1024)
            if i == 12:
                announce("STREAMING")
    storage.put(spec["key"], stream(), content_type="audio/flac")
else:
    if spec["backend"] == "local":
        real_rename = os.rename
        def slow_rename(src, dst, **kwargs):
            if str(dst).endswith(spec["key"].split("/")[-1]):
                announce("ASSEMBLED")
            return real_rename(src, dst, **kwargs)
        os.rename = slow_rename
    else:
        real_copy = S3Storage.server_side_copy
        def slow_copy(self, *args, **kwargs):
            announce("ASSEMBLED")
            return real_copy(self, *args, **kwargs)
        S3Storage.server_side_copy = slow_copy
    uploads = ResumableUploads(storage, FileUploadSessionStore(spec["sessions"]))
    uploads.complete(spec["session"])
print("FINISHED", flush=True)
"""


def run_until(marker: str, spec: dict) -> None:
    command = [sys.executable, "-c", WRITER, json.dumps(spec)]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            line = process.stdout.readline().strip()
            if line != marker:
                process.wait(timeout=30)
                pytest.fail(f"the writer said {line!r}: {process.stderr.read()[-2000:]}")
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL


@pytest.fixture(params=["local", "s3"])
def target(request, tmp_path):
    if request.param == "local":
        root = tmp_path / "root"
        return {"backend": "local", "root": str(root)}, lambda: LocalStorage(root)
    endpoint = request.getfixturevalue("moto_s3_endpoint")
    request.getfixturevalue("s3_credentials")
    bucket = request.getfixturevalue("bucket")

    def make():
        return S3Storage(
            bucket,
            endpoint_url=endpoint,
            access_key_id="testing-access-key",
            secret_access_key="testing-secret-key",
            profile="minio",
            multipart_threshold=5 * MiB,
            part_size=5 * MiB,
        )

    return {"backend": "s3", "bucket": bucket, "endpoint": endpoint}, make


def test_killed_mid_put_leaves_nothing_visible(target):
    spec, make = target
    run_until("STREAMING", spec | {"mode": "put", "key": "tracks/killed.flac"})
    storage = make()
    assert not storage.exists("tracks/killed.flac")
    assert list(storage.list()) == []
    if isinstance(storage, LocalStorage):  # the temporary file is there, hidden, sweepable
        leftovers = [p for p in storage.root.rglob("*") if p.is_file()]
        assert leftovers
        assert all(p.name.startswith(".veza-tmp-") for p in leftovers)
        assert storage.sweep_temporary(older_than=0) == len(leftovers)


def test_killed_mid_complete_then_resumed_completes_with_the_right_checksum(target, tmp_path):
    spec, make = target
    storage = make()
    sessions = tmp_path / "sessions"
    data = os.urandom(12 * MiB + 5)
    digest = hashlib.sha256(data).hexdigest()
    uploads = ResumableUploads(storage, FileUploadSessionStore(sessions))
    session = uploads.begin(
        "tracks/resumed.flac",
        len(data),
        chunk_size=5 * MiB,
        content_type="audio/flac",
        sha256=digest,
    )
    for index in range(3):
        uploads.put_chunk(session, index, data=data[index * 5 * MiB : (index + 1) * 5 * MiB])
    run_until(
        "ASSEMBLED",
        spec
        | {
            "mode": "complete",
            "key": "tracks/resumed.flac",
            "sessions": str(sessions),
            "session": session,
        },
    )
    assert not storage.exists("tracks/resumed.flac")
    assert list(storage.list()) == []
    resumed = ResumableUploads(make(), FileUploadSessionStore(sessions))
    info = resumed.complete(session)
    assert info.sha256 == digest
    with storage.open("tracks/resumed.flac") as reader:
        assert hashlib.sha256(reader.read()).hexdigest() == digest
