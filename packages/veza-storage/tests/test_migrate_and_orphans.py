"""local -> S3 migration that can never lose data, and orphan detection."""

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest

from veza_storage import LocalStorage, ObjectNotFoundError, find_orphans, migrate


def fill(storage, count=12, size=40_000):
    contents = {}
    for i in range(count):
        key = f"tracks/{i:03d}/audio.mp3"
        contents[key] = os.urandom(size + i)
        storage.put(key, contents[key], content_type="audio/mpeg", metadata={"n": str(i)})
    return contents


def test_copy_verify_checkpoint_callback_then_delete(local_storage, s3_storage, tmp_path):
    contents = fill(local_storage)
    order = []

    def flip_pointer(item):
        assert local_storage.exists(item.key)  # the source still exists when the app flips
        order.append(("verified", item.key))

    report = migrate(
        local_storage,
        s3_storage,
        checkpoint=tmp_path / "cp.jsonl",
        on_verified=flip_pointer,
        delete_source_after_verify=True,
    )
    assert report.count("copied") == len(contents)
    assert report.failed == ()
    for key, data in contents.items():
        info = s3_storage.stat(key)
        assert info.sha256 == hashlib.sha256(data).hexdigest()
        assert info.metadata["n"] == str(int(key.split("/")[1]))
        assert not local_storage.exists(key)
    assert sorted(k for _, k in order) == sorted(contents)
    lines = (tmp_path / "cp.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["key"] for line in lines) == sorted(contents)


def test_sources_are_kept_unless_deletion_is_asked_for(local_storage, s3_storage):
    contents = fill(local_storage, count=3)
    migrate(local_storage, s3_storage)
    assert all(local_storage.exists(k) for k in contents)


class FlakyDestination:
    """Wraps a real backend; the n-th put dies half way through the stream."""

    def __init__(self, inner, fail_on: set[int]):
        self.inner, self.fail_on, self.calls = inner, fail_on, 0

    def put(self, key, stream, **kwargs):
        self.calls += 1
        if self.calls in self.fail_on:
            stream.read(1000)
            raise ConnectionResetError("the network died mid-copy")
        return self.inner.put(key, stream, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_failure_mid_copy_loses_nothing_and_a_rerun_finishes(local_storage, s3_storage, tmp_path):
    contents = fill(local_storage, count=8)
    flaky = FlakyDestination(s3_storage, fail_on={2, 5})
    first = migrate(
        local_storage,
        flaky,
        checkpoint=tmp_path / "cp",
        concurrency=1,
        delete_source_after_verify=True,
    )
    assert len(first.failed) == 2
    assert all("network died" in item.error for item in first.failed)
    failed_keys = {item.key for item in first.failed}
    for key, data in contents.items():
        if key in failed_keys:  # the source of every failed object is intact...
            with local_storage.open(key) as reader:
                assert reader.read() == data
            with pytest.raises(ObjectNotFoundError):  # ...and nothing half-written appeared
                s3_storage.stat(key)
        else:
            assert not local_storage.exists(key)
    second = migrate(
        local_storage, s3_storage, checkpoint=tmp_path / "cp", delete_source_after_verify=True
    )
    assert second.count("copied") == 2
    assert second.failed == ()
    for key, data in contents.items():
        with s3_storage.open(key) as reader:
            assert reader.read() == data


def test_rerun_is_idempotent(local_storage, s3_storage, tmp_path):
    fill(local_storage, count=4)
    migrate(local_storage, s3_storage)
    again = migrate(local_storage, s3_storage)  # no checkpoint: verified in place
    assert again.count("already-there") == 4
    third = migrate(local_storage, s3_storage, checkpoint=tmp_path / "c")
    fourth = migrate(local_storage, s3_storage, checkpoint=tmp_path / "c")
    assert third.count("already-there") == 4
    assert fourth.count("checkpointed") == 4


def test_a_callback_failure_keeps_the_source(local_storage, s3_storage):
    fill(local_storage, count=2)

    def database_down(item):
        raise RuntimeError("database unavailable")

    report = migrate(
        local_storage, s3_storage, on_verified=database_down, delete_source_after_verify=True
    )
    assert len(report.failed) == 2
    assert len(list(local_storage.list())) == 2


def test_dry_run_writes_nothing(local_storage, s3_storage):
    fill(local_storage, count=3)
    report = migrate(local_storage, s3_storage, dry_run=True)
    assert report.count("dry-run") == 3
    assert list(s3_storage.list()) == []


def test_legacy_files_without_metadata_migrate(tmp_path, s3_storage):
    root = tmp_path / "legacy"
    (root / "old").mkdir(parents=True)
    (root / "old" / "song.mp3").write_bytes(b"ID3" + os.urandom(5000))  # written by another tool
    report = migrate(LocalStorage(root), s3_storage)
    assert report.count("copied") == 1
    assert s3_storage.stat("old/song.mp3").content_type == "audio/mpeg"


def test_cli_migrate(tmp_path, moto_s3_endpoint, s3_credentials, bucket):
    source = LocalStorage(tmp_path / "src")
    fill(source, count=5, size=1000)
    env = os.environ | {
        "AWS_ACCESS_KEY_ID": s3_credentials["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": s3_credentials["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    command = [
        sys.executable,
        "-m",
        "veza_storage",
        "migrate",
        "--from",
        f"local:{tmp_path / 'src'}",
        "--to",
        f"s3://{bucket}/music",
        "--endpoint-url",
        moto_s3_endpoint,
        "--profile",
        "minio",
        "--checkpoint",
        str(tmp_path / "cp"),
        "--concurrency",
        "2",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert "5 copied" in result.stdout
    assert "0 sources deleted" in result.stdout
    dry = subprocess.run(
        [*command, "--dry-run"], capture_output=True, text=True, env=env, check=False
    )
    assert "5 done earlier" in dry.stdout


def test_orphans(storage):
    for key in ("a/1", "a/2", "b/3"):
        storage.put(key, b"x", content_type="text/plain")
    old = time.time() + 7200  # everything written "two hours ago" from this clock's view
    report = find_orphans(storage, ["a/1", "b/3", "c/missing"], now=old)
    assert [i.key for i in report.orphans] == ["a/2"]
    assert report.missing == ("c/missing",)
    fresh = find_orphans(storage, ["a/1", "b/3"], now=time.time())
    assert [i.key for i in fresh.in_flight] == ["a/2"]
    assert fresh.orphans == ()
    deleted = find_orphans(storage, ["a/1", "b/3"], now=old, delete=True)
    assert deleted.deleted == 1
    assert not storage.exists("a/2")


def test_cli_orphans(tmp_path):
    storage = LocalStorage(tmp_path / "r")
    storage.put("keep", b"x", content_type="text/plain")
    storage.put("drop", b"x", content_type="text/plain")
    refs = tmp_path / "refs.txt"
    refs.write_text("keep\nghost\n")
    command = [
        sys.executable,
        "-m",
        "veza_storage",
        "orphans",
        "--root",
        str(tmp_path / "r"),
        "--referenced",
        str(refs),
        "--grace",
        "0",
    ]
    report = subprocess.run(command, capture_output=True, text=True, check=False)
    assert report.returncode == 1
    assert "orphan\tdrop\t1" in report.stdout
    assert "missing\tghost" in report.stdout
    assert storage.exists("drop")
    deleted = subprocess.run([*command, "--delete"], capture_output=True, text=True, check=False)
    assert deleted.returncode == 0
    assert not storage.exists("drop")
