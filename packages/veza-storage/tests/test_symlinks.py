"""No symbolic link planted under the root leads outside it: every operation, every depth.

The attacker controls a folder inside the root (a shared upload area, a compromised
tool) and plants links there; the storage must refuse them with a typed error and create,
read, list or delete nothing outside the root, including when the folders under the link
do not exist yet and would be created.
"""

import hashlib
import os

import pytest

from veza_storage import (
    FileUploadSessionStore,
    InvalidKeyError,
    LocalStorage,
    ObjectExistsError,
    ResumableUploads,
    SymlinkRefusedError,
)

KiB = 1024


@pytest.fixture
def outside(tmp_path):
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret.txt").write_bytes(b"not yours")
    return path


@pytest.fixture
def root(tmp_path):
    return LocalStorage(tmp_path / "root")


def everything_under(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# a link at the first level, deeper down, and to a folder *inside* the root (also refused:
# a link's target can be changed later)
PLANTS = {
    "top": ("evil", ["evil/new/deeper/x.mp3", "evil/x.mp3", "evil/new/x.mp3"]),
    "deep": ("a/b/evil", ["a/b/evil/new/x.mp3", "a/b/evil/x.mp3"]),
}


@pytest.mark.parametrize("plant", PLANTS, ids=str)
def test_put_through_a_planted_link_creates_nothing_outside(root, outside, plant):
    link, keys = PLANTS[plant]
    (root.root / link).parent.mkdir(parents=True, exist_ok=True)
    (root.root / link).symlink_to(outside)
    for key in keys:
        for body in (b"attacker bytes", iter([b"attacker ", b"stream"])):
            with pytest.raises(InvalidKeyError) as refused:
                root.put(key, body, content_type="audio/mpeg")
            assert everything_under(outside) == ["secret.txt"], key
            assert isinstance(refused.value, SymlinkRefusedError)
            assert "symbolic link" in str(refused.value)
    assert (outside / "secret.txt").read_bytes() == b"not yours"


def test_reads_deletes_and_listings_do_not_follow_links(root, outside):
    (root.root / "evil").symlink_to(outside)
    (root.root / "file.txt").symlink_to(outside / "secret.txt")
    root.put("real/kept.txt", b"mine", content_type="text/plain")
    for key in ("evil/secret.txt", "file.txt"):
        with pytest.raises(SymlinkRefusedError):
            root.stat(key)
        with pytest.raises(SymlinkRefusedError):
            root.open(key)
        with pytest.raises(SymlinkRefusedError):
            root.delete(key)
        with pytest.raises(SymlinkRefusedError):
            root.local_path(key)
    assert [i.key for i in root.list()] == ["real/kept.txt"]
    assert list(root.list("evil/")) == []
    assert (outside / "secret.txt").read_bytes() == b"not yours"
    assert root.sweep_temporary(older_than=0) == 0


def test_put_replaces_a_link_at_the_key_instead_of_writing_through_it(root, outside):
    (root.root / "track.mp3").symlink_to(outside / "secret.txt")
    info = root.put("track.mp3", b"new object", content_type="audio/mpeg")
    assert info.size == len(b"new object")
    assert not (root.root / "track.mp3").is_symlink()
    assert (outside / "secret.txt").read_bytes() == b"not yours"
    (root.root / "other.mp3").symlink_to(outside / "secret.txt")
    with pytest.raises(ObjectExistsError):  # if_absent: the name is taken, nothing followed
        root.put("other.mp3", b"x", content_type="audio/mpeg", if_absent=True)
    with pytest.raises(SymlinkRefusedError):  # a link to a file is no folder either
        root.put("other.mp3/x", b"x", content_type="audio/mpeg")
    assert (outside / "secret.txt").read_bytes() == b"not yours"


def test_a_folder_swapped_for_a_link_while_being_created_is_refused(root, outside, monkeypatch):
    """The race the old resolve-then-create check lost: the link appears after mkdir."""
    real_mkdir = os.mkdir

    def mkdir_then_swap(path, mode=0o777, *, dir_fd=None):
        real_mkdir(path, mode, dir_fd=dir_fd)
        if os.fspath(path).endswith("new"):
            os.rmdir(path, dir_fd=dir_fd)
            os.symlink(outside, path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "mkdir", mkdir_then_swap)
    with pytest.raises(SymlinkRefusedError):
        root.put("new/x.mp3", b"attacker bytes", content_type="audio/mpeg")
    assert everything_under(outside) == ["secret.txt"]


def chunks_of(data, size):
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("key", ["evil/new/t.flac", "evil/t.flac"])
def test_resumable_complete_through_a_planted_link_creates_nothing_outside(
    root, outside, tmp_path, key
):
    (root.root / "evil").symlink_to(outside)
    uploads = ResumableUploads(root, FileUploadSessionStore(tmp_path / "sessions"))
    data = os.urandom(150 * KiB)
    session = uploads.begin(
        key,
        len(data),
        chunk_size=64 * KiB,
        content_type="audio/flac",
        sha256=hashlib.sha256(data).hexdigest(),
    )
    for index, piece in enumerate(chunks_of(data, 64 * KiB)):
        uploads.put_chunk(session, index, data=piece)
    with pytest.raises(InvalidKeyError) as refused:
        uploads.complete(session)
    assert everything_under(outside) == ["secret.txt"]
    assert isinstance(refused.value, SymlinkRefusedError)
    assert list(root.list()) == []


def test_a_linked_staging_folder_is_refused(root, outside, tmp_path):
    (root.root / ".veza-uploads").symlink_to(outside)
    uploads = ResumableUploads(root, FileUploadSessionStore(tmp_path / "sessions"))
    with pytest.raises(SymlinkRefusedError):
        uploads.begin("t.flac", 10, chunk_size=64 * KiB, content_type="audio/flac")
    assert everything_under(outside) == ["secret.txt"]
    with pytest.raises(SymlinkRefusedError):  # loud: an operator has to look at this
        uploads.reap_expired(now=4_000_000_000)
    assert everything_under(outside) == ["secret.txt"]


def test_a_session_folder_swapped_for_a_link_is_refused(root, outside, tmp_path):
    uploads = ResumableUploads(root, FileUploadSessionStore(tmp_path / "sessions"))
    session = uploads.begin("t.flac", 100 * KiB, chunk_size=64 * KiB, content_type="audio/flac")
    staged = root.root / ".veza-uploads" / session
    for child in staged.iterdir():
        child.unlink()
    staged.rmdir()
    staged.symlink_to(outside)
    with pytest.raises(SymlinkRefusedError):
        uploads.put_chunk(session, 0, data=os.urandom(64 * KiB))
    uploads.abort(session)  # removes the link itself, never what it points to
    assert everything_under(outside) == ["secret.txt"]
