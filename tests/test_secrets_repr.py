"""No secret of the family or of the app appears in any ``repr`` or ``str``.

Every configuration and service object is built from an environment whose secrets are
distinctive marker strings; then a walker visits each veza object reachable from them
(attributes, attrs fields, slots, containers, a few levels deep) and renders every veza
object it meets with ``repr`` and ``str`` (raw values held privately where they are used
are not rendered by anything but the code that uses them). A marker in any rendering is a leak: an
``logger.info("%s", config)`` or a traceback that prints locals would publish it.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

MARK = "LEAKME"


def _marker(name: str) -> str:
    return f"{MARK}{name}{secrets.token_hex(8)}"


def _children(obj: object) -> Iterator[object]:
    if isinstance(obj, Mapping):
        yield from obj.keys()
        yield from obj.values()
        return
    if isinstance(obj, list | tuple | set | frozenset):
        yield from obj
        return
    names: set[str] = set()
    for klass in type(obj).__mro__:
        names.update(getattr(klass, "__slots__", ()) or ())
    names.update(getattr(obj, "__dict__", {}) or {})
    for field in getattr(type(obj), "__attrs_attrs__", ()) or ():
        names.add(field.name)
    for name in sorted(names):
        try:
            yield getattr(obj, name)
        except Exception:  # noqa: S112 - an unreadable slot has nothing to render
            continue


def _ours(obj: object) -> bool:
    module = type(obj).__module__ or ""
    return module.startswith("veza_") or isinstance(obj, Mapping | list | tuple | set | frozenset)


def walk(root: object, *, depth: int = 5) -> Iterator[tuple[str, object]]:
    """Yield (path, value) for every value reachable from ``root`` through veza objects."""
    seen: set[int] = set()
    stack: list[tuple[str, object, int]] = [(type(root).__name__, root, 0)]
    while stack:
        path, obj, level = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        yield path, obj
        if level >= depth or not _ours(obj) or isinstance(obj, str | bytes):
            continue
        for index, child in enumerate(_children(obj)):
            stack.append((f"{path}.{type(child).__name__}[{index}]", child, level + 1))


def assert_no_secret(root: object, markers: list[str]) -> int:
    checked = 0
    for path, value in walk(root):
        if not (type(value).__module__ or "").startswith("veza_"):
            continue  # raw values and containers are held where used; veza objects render
        for render in (repr, str):
            try:
                text = render(value)
            except Exception:  # noqa: S112 - an object that cannot render leaks nothing
                continue
            checked += 1
            leaked = [m for m in markers if m in text or m[: len(MARK) + 12] in text]
            assert not leaked, f"{render.__name__}() of {path} shows a secret"
    return checked


def test_cdn_objects_keep_their_keys() -> None:
    from veza_cdn import CDN, CDNConfig, build_signer, provider_config

    key = _marker("cdn")
    old = _marker("cdnold")
    env = {
        "CDN_ENABLED": "true",
        "CDN_PROVIDER": "bunny",
        "CDN_BASE_URL": "https://zone.b-cdn.net",
        "CDN_SECURITY_KEY": key,
        "CDN_VERIFY_KEYS": old,
    }
    config = CDNConfig.from_env(env)
    objects = [config, build_signer(config), provider_config(config), CDN.from_env(env)]
    assert sum(assert_no_secret(o, [key, old]) for o in objects) > 4


def test_payments_objects_keep_their_keys() -> None:
    from veza_payments import PaymentsConfig

    api, hook, stripe = _marker("hs"), _marker("wh"), _marker("sk")
    env = {
        "HYPERSWITCH_API_KEY": api,
        "HYPERSWITCH_WEBHOOK_KEYS": hook,
        "STRIPE_SECRET_KEY": f"sk_test_{stripe}",
    }
    config = PaymentsConfig.from_env(env)
    client = config.build()
    connect = config.stripe_connect()
    try:
        checked = sum(assert_no_secret(o, [api, hook, stripe]) for o in (config, client, connect))
    finally:
        client.close()
    assert checked > 3


def test_storage_objects_keep_their_keys(tmp_path: Path) -> None:
    from veza_storage import StorageConfig

    key = _marker("st")
    env = {
        "VEZA_STORAGE_BACKEND": "local",
        "VEZA_STORAGE_LOCAL_ROOT": str(tmp_path),
        "VEZA_STORAGE_SIGNING_KEY": key,
    }
    config = StorageConfig.from_env(env, production=False)
    assert assert_no_secret(config, [key]) + assert_no_secret(config.build(), [key]) > 2


def test_webrtc_objects_keep_their_secrets() -> None:
    from veza_webrtc import IceConfig

    secret, credential = _marker("turn"), _marker("cred")
    with_secret = IceConfig.from_env(
        {"WEBRTC_TURN_URLS": "turn:turn.example.com:3478", "WEBRTC_TURN_SECRET": secret}
    )
    with_credential = IceConfig.from_env(
        {
            "WEBRTC_TURN_URLS": "turn:turn.example.com:3478",
            "WEBRTC_TURN_USERNAME": "static",
            "WEBRTC_TURN_CREDENTIAL": credential,
        }
    )
    assert (
        assert_no_secret(with_secret, [secret]) + assert_no_secret(with_credential, [credential])
        > 2
    )


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_app_config_and_services_keep_every_secret(tmp_path: Path) -> None:
    from veza_reference import build_services
    from veza_reference._config import AppConfig

    markers = {
        name: _marker(name.lower())
        for name in (
            "VEZA_ADMIN_TOKEN",
            "VEZA_SESSION_SECRET",
            "VEZA_ORIGIN_SECRET",
            "CDN_SECURITY_KEY",
            "VEZA_STORAGE_SIGNING_KEY",
            "WEBRTC_TURN_SECRET",
        )
    }
    env = {
        **markers,
        "VEZA_DATA_DIR": str(tmp_path),
        "VEZA_WORKERS": "false",
        "CDN_ENABLED": "true",
        "CDN_PROVIDER": "bunny",
        "CDN_BASE_URL": "https://zone.b-cdn.net",
        "WEBRTC_TURN_URLS": "turn:turn.example.com:3478",
        "VEZA_SESSION_SECRET": base64.urlsafe_b64encode(
            markers["VEZA_SESSION_SECRET"].encode()
        ).decode(),
    }
    password = _marker("pg")
    config = AppConfig.from_env(
        {**env, "VEZA_DATABASE_URL": f"postgresql+psycopg://app:{password}@db.example/veza"}
    )
    assert assert_no_secret(config, [*markers.values(), password]) > 3
    services = build_services(env)
    try:
        assert assert_no_secret(services, list(markers.values())) > 10
    finally:
        services.close()
