"""Safe pages: security headers on every response, text-only DOM, no secret in any repr.

The browser side (a title full of markup rendered as text, no script run) is in
``test_browser.py``; this file checks what the server sends and what the code holds.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from collections.abc import Iterator
from importlib.resources import files
from typing import Any

import attrs
import httpx
import pytest
import sqlalchemy as sa

PAGES = ["/", "/call", "/shares", "/admin", "/docs", "/redoc"]
SECRET_NAMES = ("KEY", "SECRET", "TOKEN", "PASSWORD", "CREDENTIAL")


def _directives(policy: str) -> dict[str, list[str]]:
    out = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


@pytest.mark.parametrize("path", PAGES)
def test_every_page_sends_a_strict_policy(demo: Any, path: str) -> None:
    answer = httpx.get(demo.url + path)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["x-frame-options"] == "DENY"
    policy = _directives(answer.headers["content-security-policy"])
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    for directive in ("default-src", "script-src", "style-src"):
        assert "'unsafe-inline'" not in policy[directive]
        assert "'unsafe-eval'" not in policy[directive]
    if path in ("/", "/call", "/shares", "/admin"):  # the app's own pages: nothing inline
        assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
        assert not re.search(r"<script>|<style>|\sstyle=|\son\w+=", answer.text)
    # the API viewers: each inline script admitted by its own hash, nothing else inline
    for body in re.findall(r"<script>(.*?)</script>", answer.text, flags=re.DOTALL):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy["script-src"]


def test_other_responses_cannot_run_anything(demo: Any) -> None:
    for path in ("/api/v1/tracks", "/healthz", "/static/app.js", "/api/v1/tracks/nope"):
        answer = httpx.get(demo.url + path)
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert "default-src 'none'" in answer.headers["content-security-policy"], path


def test_the_page_code_builds_the_dom_with_text_apis_only() -> None:
    """Every script the pages load: no HTML parsing of strings, no eval, no inline handlers."""
    static = files("veza_reference") / "static"
    scripts = [p for p in static.iterdir() if p.name.endswith(".js")]
    assert {p.name for p in scripts} >= {"app.js", "call.js", "common.js", "shares.js", "admin.js"}
    forbidden = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|"
        r"setAttribute\(\s*['\"]on|\.on\w+\s*=\s*['\"]|setTimeout\(\s*['\"]"
    )
    for script in scripts:
        text = script.read_text(encoding="utf-8")
        assert not forbidden.search(text), f"{script.name}: {forbidden.search(text)}"


# ---- no secret in any repr ------------------------------------------------------------


def _secrets_of(services: Any, extra: list[str]) -> dict[str, str]:
    found = {
        name: value
        for name, value in services.env.items()
        if any(word in name for word in SECRET_NAMES) and len(value) >= 8
    }
    found["admin_token"] = services.config.admin_token.reveal()
    found["session_secret"] = services.config.session_secret.reveal()
    found["origin_secret"] = services.config.origin_secret.reveal()
    # the typed defaults the app generated and handed to the packages
    if services.storage_config.signing_key:
        found["storage_signing_key"] = services.storage_config.signing_key.reveal()
    if services.cdn_config.security_key is not None:
        found["cdn_security_key"] = services.cdn_config.security_key.reveal()
    found["hyperswitch_api_key"] = services.payments.hyperswitch_api_key.reveal()
    for index, key in enumerate(services.payments.webhook_keys):
        found[f"webhook_key{index}"] = key.reveal()
    if services.payments.stripe_secret_key:
        found["stripe_secret_key"] = services.payments.stripe_secret_key.reveal()
    for index, value in enumerate(extra):
        found[f"extra{index}"] = value
    return found


def _walk(obj: Any, name: str) -> Iterator[tuple[str, Any]]:
    """``obj`` and each of its attributes (attrs fields and ``vars``), one level down."""
    yield name, obj
    names = [f.name for f in attrs.fields(type(obj))] if attrs.has(type(obj)) else []
    names += [n for n in vars(obj) if not n.startswith("__")] if hasattr(obj, "__dict__") else []
    for attribute in dict.fromkeys(names):
        yield f"{name}.{attribute}", getattr(obj, attribute, None)


@pytest.fixture
def services_with_a_database_password(
    postgres_url: str, tmp_path: Any
) -> Iterator[tuple[Any, str]]:
    from veza_reference import build_services

    password = "pw-" + secrets.token_urlsafe(12)
    url = sa.make_url(postgres_url).set(password=password)  # trust auth ignores it
    services = build_services(
        {
            "VEZA_DATABASE_URL": url.render_as_string(hide_password=False),
            "VEZA_DATA_DIR": str(tmp_path),
            "VEZA_PORT": "0",
            "VEZA_WORKERS": "false",
            "VEZA_FAST_PASSWORD_HASHING": "true",
            "WEBRTC_TURN_URLS": "turn:127.0.0.1:3478",
            "WEBRTC_TURN_SECRET": "turn-" + secrets.token_urlsafe(12),
            "VEZA_REDIS_URL": f"redis://:{password}@127.0.0.1:6379/0",
            "PATH": os.environ.get("PATH", ""),
        }
    )
    yield services, password
    services.close()


def test_no_secret_in_the_repr_of_config_or_services(
    services_with_a_database_password: tuple[Any, str],
) -> None:
    services, password = services_with_a_database_password
    from veza_reference._demo import seed_users

    services.extra["demo_passwords"] = seed_users(services)  # as run_demo keeps them
    known = _secrets_of(services, [password, *services.extra["demo_passwords"].values()])
    assert len(known) >= 8
    checked = 0
    for root_name, root in (("services", services), ("config", services.config)):
        for name, value in _walk(root, root_name):
            for text in (repr(value), str(value)):
                checked += 1
                leaked = [k for k, secret in known.items() if secret in text]
                assert not leaked, f"{name} shows {leaked}"
    assert checked > 40
    assert "***" in repr(services.config)  # the database URL is there, its password masked
