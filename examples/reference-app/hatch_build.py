# ruff: noqa: INP001 - a hatchling build hook beside pyproject.toml, not a package
"""Build hook: fetch the pinned hls.js into the package, so the demo needs no CDN.

hls.js is a JavaScript library published on npm only (no maintained PyPI wheel ships
it). The project's own install (``uv sync``, which builds this package) fetches it with
the ordinary npm client, checks the tarball against the sha512 integrity pinned below
(the value npm's lockfiles use: a tarball that differs is refused, whatever the registry
says), and writes ``dist/hls.min.js`` and its licence under
``src/veza_reference/vendor/``. At run time the app serves that file at
``/vendor/hls.min.js``: nothing is fetched by hand or from a CDN.

To bump: ``npm view hls.js@X dist.integrity``, then change both constants.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

HLS_JS_VERSION = "1.7.4"
# npm's integrity of the tarball (npm view hls.js@1.7.4 dist.integrity)
HLS_JS_INTEGRITY = "sha512-3GlxGdPvT2YHvQYOt+yOzT/DEior/qJVNIylHA77kgeoBTdQQqi70GwefNEUmHQeNGyjC8U62+bruqW/Tpm+tg=="  # noqa: E501
MEMBERS = {"package/dist/hls.min.js": "hls.min.js", "package/LICENSE": "hls.js-LICENSE"}


def integrity_of(data: bytes) -> str:
    """The npm ``integrity`` string (``sha512-<base64>``) of a tarball."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def fetch_hls_js(vendor: Path) -> None:
    """Put the pinned hls.js under ``vendor`` (a no-op when that version is there).

    Raises:
        RuntimeError: npm is missing or failed, or the tarball is not the pinned one.
    """
    stamp = vendor / "hls.js.version"
    wanted = f"{HLS_JS_VERSION} {HLS_JS_INTEGRITY}\n"
    if (vendor / "hls.min.js").is_file() and stamp.is_file() and stamp.read_text() == wanted:
        return
    npm = shutil.which("npm")
    if npm is None:
        msg = (
            "building veza-reference-app needs npm to fetch hls.js "
            f"{HLS_JS_VERSION} (apt-get install npm), or set VEZA_BUILD_WITHOUT_HLS_JS=1 "
            "to build without it (HLS then plays only where the browser plays it natively)"
        )
        raise RuntimeError(msg)
    with tempfile.TemporaryDirectory(prefix="veza-hls-js-") as tmp:
        result = subprocess.run(
            [npm, "pack", f"hls.js@{HLS_JS_VERSION}", "--json", "--pack-destination", tmp],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            msg = f"npm pack hls.js@{HLS_JS_VERSION} failed: {result.stderr[-500:]}"
            raise RuntimeError(msg)
        filename = json.loads(result.stdout)[0]["filename"]
        tarball = Path(tmp) / filename
        data = tarball.read_bytes()
        if integrity_of(data) != HLS_JS_INTEGRITY:
            msg = (
                f"hls.js {HLS_JS_VERSION} from npm does not match the pinned integrity "
                f"(got {integrity_of(data)}): refusing it"
            )
            raise RuntimeError(msg)
        vendor.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball, "r:gz") as archive:
            for member, name in MEMBERS.items():
                source = archive.extractfile(member)
                if source is None:
                    msg = f"hls.js {HLS_JS_VERSION}: {member} is missing from the tarball"
                    raise RuntimeError(msg)
                (vendor / name).write_bytes(source.read())
    stamp.write_text(wanted)


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Fetch hls.js before the wheel (or the editable install) is built."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Fetch, then force-include the (git-ignored) files into a regular wheel."""
        if self.target_name != "wheel" or os.environ.get("VEZA_BUILD_WITHOUT_HLS_JS") == "1":
            return
        vendor = Path(self.root) / "src" / "veza_reference" / "vendor"
        fetch_hls_js(vendor)
        if version != "editable":  # an editable install reads src/ directly
            for name in (*MEMBERS.values(), "hls.js.version"):
                build_data["force_include"][str(vendor / name)] = f"veza_reference/vendor/{name}"
