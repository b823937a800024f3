"""Amazon CloudFront signed URLs and signed cookies, and their verification.

* Canned policy: ``{"Statement":[{"Resource":URL,"Condition":{"DateLessThan":
  {"AWS:EpochTime":E}}}]}`` (compact JSON, this exact order); the URL carries
  ``Expires``, ``Signature``, ``Key-Pair-Id``.
* Custom policy: the same statement with a wildcard-capable ``Resource`` and optional
  ``IpAddress`` (``AWS:SourceIp``, CIDR) and ``DateGreaterThan``; the URL carries
  ``Policy`` (the policy, CloudFront-base64), ``Signature``, ``Key-Pair-Id``. The JSON
  is byte-identical to botocore's ``CloudFrontSigner.build_policy``.
* Keys: RSA-2048 (PKCS#1 v1.5) or ECDSA P-256 (DER signature); hash SHA-1 (the
  default) or SHA-256, which adds ``Hash-Algorithm=SHA256`` as the **last** query
  parameter (cookie ``CloudFront-Hash-Algorithm``).
* CloudFront base64: ``+`` → ``-``, ``=`` → ``_``, ``/`` → ``~``.

RSA signing costs about half a millisecond; signatures are memoised per policy (an LRU
bounded by ``cache_size``), so with a windowed :class:`~veza_cdn.ExpiryPolicy` a URL
signed again inside its window costs a dictionary lookup, and one wildcard policy signs
a whole HLS playlist with a single RSA operation.
"""

from __future__ import annotations

import ipaddress
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Literal, TypeAlias, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from veza_cdn._encoding import (
    cloudfront_b64,
    normalize_url,
    refuse_reserved,
    split_url,
    strict_b64decode,
)
from veza_cdn._errors import CDNConfigurationError, SigningError
from veza_cdn._paths import (
    CanonicalPath,
    canonical_path,
    checked_path,
    glob_matches,
    plainly_under,
    prefix_scope,
)
from veza_cdn._verification import FailureReason, Verification, check_time_window

HashAlgorithm = Literal["SHA1", "SHA256"]
PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
_SIGNING_PARAMS = ("Expires", "Policy", "Signature", "Key-Pair-Id", "Hash-Algorithm")
_CANNED = (
    '{{"Statement":[{{"Resource":"{}","Condition":{{"DateLessThan":{{"AWS:EpochTime":{}}}}}}}]}}'
)
# printable ASCII except '"' and '\\': what json.dumps copies through unescaped
_JSON_SAFE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
_HASHES: dict[str, type[hashes.SHA1 | hashes.SHA256]] = {
    "SHA1": hashes.SHA1,
    "SHA256": hashes.SHA256,
}


def _check_key(key: PrivateKey | PublicKey, what: str) -> None:
    anything = cast("object", key)  # untyped callers may pass anything
    if isinstance(anything, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if anything.key_size != 2048:
            msg = f"{what}: CloudFront accepts RSA-2048 keys only, got RSA-{anything.key_size}"
            raise CDNConfigurationError(msg)
    elif isinstance(anything, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not isinstance(anything.curve, ec.SECP256R1):
            msg = f"{what}: CloudFront accepts ECDSA P-256 keys only, got {anything.curve.name}"
            raise CDNConfigurationError(msg)
    else:
        msg = f"{what}: expected an RSA-2048 or ECDSA P-256 key"
        raise CDNConfigurationError(msg)


def load_private_key(pem: bytes, password: bytes | None = None) -> PrivateKey:
    """Load a PEM private key and check CloudFront can use it.

    Raises:
        CDNConfigurationError: Not a PEM key, wrong password, or a key type or size
            CloudFront does not accept. The message never includes key material.
    """
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except (ValueError, TypeError) as exc:
        msg = f"cannot load the CloudFront private key ({type(exc).__name__})"
        raise CDNConfigurationError(msg) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        msg = "the CloudFront private key must be RSA-2048 or ECDSA P-256"
        raise CDNConfigurationError(msg)
    _check_key(key, "private key")
    return key


def build_policy(
    resource: str,
    expires: int,
    *,
    not_before: int | None = None,
    ip_address: str | None = None,
) -> str:
    """The policy statement CloudFront evaluates (canned when only ``expires`` is set).

    The output is byte-identical to botocore's ``build_policy``: compact JSON,
    conditions ``DateLessThan``, ``IpAddress``, ``DateGreaterThan`` in that order, and a
    bare address widened to ``/32`` (``/128`` for IPv6).
    """
    if not_before is None and not ip_address and _JSON_SAFE.fullmatch(resource):
        # the canned policy, on the hot path: for a resource json.dumps would not escape,
        # this template is byte-identical to it (tested against botocore)
        return _CANNED.format(resource, int(expires))
    condition: dict[str, object] = {"DateLessThan": {"AWS:EpochTime": int(expires)}}
    if ip_address:
        condition["IpAddress"] = {"AWS:SourceIp": _cidr(ip_address)}
    if not_before is not None:
        condition["DateGreaterThan"] = {"AWS:EpochTime": int(not_before)}
    statement = {"Statement": [{"Resource": resource, "Condition": condition}]}
    return json.dumps(statement, separators=(",", ":"))


def _cidr(ip_address: str) -> str:
    text = ip_address.strip()
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        msg = f"ip_address {ip_address!r} is not an IP address or CIDR range"
        raise SigningError(msg) from None
    if "/" in text:
        return text
    return f"{text}/{network.max_prefixlen}"


class _SignatureCache:
    """A small thread-safe LRU from policy bytes to encoded signature."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[bytes, str] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_sign(self, policy: bytes, sign: Callable[[bytes], bytes]) -> str:
        if self._size == 0:
            return cloudfront_b64(sign(policy))
        with self._lock:
            hit = self._items.get(policy)
            if hit is not None:
                self._items.move_to_end(policy)
                return hit
        signature = cloudfront_b64(sign(policy))
        with self._lock:
            self._items[policy] = signature
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        return signature


class CloudFrontVerifier:
    """Verifies CloudFront signed URLs and cookies with public keys only.

    What an origin or a local edge needs: it holds no private key.

    Args:
        public_keys: Key pair id (the CloudFront public key id) → public key.
    """

    def __init__(self, public_keys: Mapping[str, PublicKey]) -> None:
        for key_id, key in public_keys.items():
            _check_key(key, f"public key {key_id!r}")
        self._keys = dict(public_keys)

    def verify(
        self, signed_url: str, *, now: float | None = None, user_ip: str | None = None
    ) -> Verification:
        """Check a signed URL as CloudFront would."""
        try:
            origin, path, query = split_url(signed_url)
        except SigningError as exc:
            return Verification.fail(FailureReason.MALFORMED, str(exc))
        checked = checked_path(path)
        if isinstance(checked, Verification):
            return checked
        kept: list[str] = []
        fields: dict[str, str] = {}
        for part in query.split("&") if query else []:
            name, sep, value = part.partition("=")
            if name in _SIGNING_PARAMS and sep:
                if name in fields:
                    return Verification.fail(FailureReason.MALFORMED, f"{name} is repeated")
                fields[name] = value
            elif fields:
                return Verification.fail(
                    FailureReason.MALFORMED, "CloudFront signing parameters must come last"
                )
            else:
                kept.append(part)
        base_url = origin + path + ("?" + "&".join(kept) if kept else "")
        return self._check(base_url, checked, fields, now=now, user_ip=user_ip)

    def verify_cookies(
        self,
        url: str,
        cookies: Mapping[str, str],
        *,
        now: float | None = None,
        user_ip: str | None = None,
    ) -> Verification:
        """Check signed cookies for a request to ``url`` (as requested)."""
        try:
            checked = checked_path(split_url(url)[1])
        except SigningError as exc:
            return Verification.fail(FailureReason.MALFORMED, str(exc))
        if isinstance(checked, Verification):
            return checked
        fields = {
            name.removeprefix("CloudFront-"): value
            for name, value in cookies.items()
            if name.startswith("CloudFront-")
        }
        return self._check(url, checked, fields, now=now, user_ip=user_ip)

    def _check(
        self,
        url: str,
        path: CanonicalPath,
        fields: dict[str, str],
        *,
        now: float | None,
        user_ip: str | None,
    ) -> Verification:
        key_id, encoded_signature = fields.get("Key-Pair-Id"), fields.get("Signature")
        if not key_id or not encoded_signature:
            return Verification.fail(FailureReason.MALFORMED, "no Signature or Key-Pair-Id")
        algorithm = fields.get("Hash-Algorithm", "SHA1")
        if algorithm not in _HASHES:
            return Verification.fail(FailureReason.MALFORMED, f"unknown hash {algorithm!r}")
        if ("Expires" in fields) == ("Policy" in fields):
            return Verification.fail(FailureReason.MALFORMED, "need exactly one of Expires/Policy")
        if "Expires" in fields:
            if not fields["Expires"].isdigit():
                return Verification.fail(FailureReason.MALFORMED, "Expires is not a number")
            policy = build_policy(url, int(fields["Expires"])).encode()
        else:
            decoded = strict_b64decode(fields["Policy"], alphabet="cloudfront")
            if decoded is None:
                return Verification.fail(FailureReason.MALFORMED, "Policy is not valid base64")
            policy = decoded
        public_key = self._keys.get(key_id)
        if public_key is None:
            return Verification.fail(FailureReason.UNKNOWN_KEY, f"no public key {key_id!r}")
        signature = strict_b64decode(encoded_signature, alphabet="cloudfront")
        if signature is None or not _verify_signature(public_key, signature, policy, algorithm):
            return Verification.fail(FailureReason.BAD_SIGNATURE, "signature does not match")
        return _evaluate_policy(policy, url, time.time() if now is None else now, user_ip, path)


def _verify_signature(key: PublicKey, signature: bytes, message: bytes, algorithm: str) -> bool:
    digest = _HASHES[algorithm]()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), digest)
        else:
            key.verify(signature, message, ec.ECDSA(digest))
    except InvalidSignature:
        return False
    return True


def _resource_matches(pattern: str, url: str) -> bool:
    """By whole segments: ``*``/``?`` stay inside one segment, except a whole last ``*``."""
    return glob_matches(pattern, url)


def _evaluate_policy(
    policy: bytes, url: str, now: float, user_ip: str | None, path: CanonicalPath
) -> Verification:
    try:
        statement = json.loads(policy)["Statement"][0]
        resource = statement.get("Resource", "*")
        condition = statement["Condition"]
        expires = int(condition["DateLessThan"]["AWS:EpochTime"])
        not_before_raw = condition.get("DateGreaterThan", {}).get("AWS:EpochTime")
        not_before = None if not_before_raw is None else int(not_before_raw)
        source_ip = condition.get("IpAddress", {}).get("AWS:SourceIp")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return Verification.fail(FailureReason.MALFORMED, "the policy is not a CloudFront policy")
    failed = check_time_window(now, expires, not_before)
    if failed is not None:
        return failed
    if not isinstance(resource, str) or not _resource_matches(resource, url):
        return Verification.fail(
            FailureReason.PATH_OUT_OF_SCOPE,
            "the URL does not match the policy's Resource",
            expires=expires,
        )
    if source_ip is not None:
        if not user_ip:
            return Verification.fail(
                FailureReason.IP_MISMATCH,
                "the policy is IP-bound; no client IP given",
                expires=expires,
            )
        try:
            inside = ipaddress.ip_address(user_ip) in ipaddress.ip_network(source_ip, strict=False)
        except ValueError:
            inside = False
        if not inside:
            return Verification.fail(
                FailureReason.IP_MISMATCH,
                "the client IP is outside the policy's range",
                expires=expires,
            )
    return Verification.ok(expires=expires, path=path.decoded)


class CloudFrontSigner:
    """Signs CloudFront URLs and cookies with a trusted key group's private key.

    Args:
        key_pair_id: The CloudFront public key id (``K…``) or legacy key pair id.
        private_key: A loaded key or its PEM bytes (RSA-2048 or ECDSA P-256).
        hash_algorithm: ``SHA1`` (CloudFront's default) or ``SHA256``.
        cache_size: How many policy signatures to memoise (0 disables the cache).
        verify_keys: More public keys :meth:`verify` accepts (rotation), by key id.

    Raises:
        CDNConfigurationError: A bad key, an empty key id, or an unknown hash.
    """

    def __init__(
        self,
        key_pair_id: str,
        private_key: PrivateKey | bytes,
        *,
        hash_algorithm: HashAlgorithm = "SHA1",
        cache_size: int = 4096,
        verify_keys: Mapping[str, PublicKey] | None = None,
    ) -> None:
        if not key_pair_id.strip():
            msg = "the CloudFront key pair id is empty"
            raise CDNConfigurationError(msg)
        algorithm = hash_algorithm.upper()
        if algorithm not in _HASHES:
            msg = f"hash_algorithm must be SHA1 or SHA256, got {hash_algorithm!r}"
            raise CDNConfigurationError(msg)
        key = load_private_key(private_key) if isinstance(private_key, bytes) else private_key
        _check_key(key, "private key")
        self._key_pair_id = key_pair_id.strip()
        self._key = key
        self._algorithm = algorithm
        self._hash = _HASHES[algorithm]()
        self._cache = _SignatureCache(cache_size)
        self._suffix = f"&Key-Pair-Id={self._key_pair_id}" + (
            "&Hash-Algorithm=SHA256" if algorithm == "SHA256" else ""
        )
        keys: dict[str, PublicKey] = {self._key_pair_id: key.public_key()}
        keys.update(verify_keys or {})
        self.verifier = CloudFrontVerifier(keys)

    def __repr__(self) -> str:
        kind = "RSA" if isinstance(self._key, rsa.RSAPrivateKey) else "ECDSA"
        return (
            f"CloudFrontSigner(key_pair_id={self._key_pair_id!r}, key={kind},"
            f" hash_algorithm={self._algorithm!r})"
        )

    @property
    def key_pair_id(self) -> str:
        """The key id CloudFront looks the public key up by."""
        return self._key_pair_id

    def _sign(self, message: bytes) -> bytes:
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(message, padding.PKCS1v15(), self._hash)
        return self._key.sign(message, ec.ECDSA(self._hash))

    def _policy_and_signature(
        self,
        url: str,
        expires: int,
        not_before: int | None,
        ip_address: str | None,
        policy_resource: str | None,
    ) -> tuple[str | None, str, str]:
        """(policy for the URL or None when canned, the policy text, its signature)."""
        custom = not_before is not None or bool(ip_address) or policy_resource is not None
        resource = normalize_url(policy_resource) if policy_resource is not None else url
        policy = build_policy(resource, expires, not_before=not_before, ip_address=ip_address)
        signature = self._cache.get_or_sign(policy.encode("utf-8"), self._sign)
        return (cloudfront_b64(policy.encode("utf-8")) if custom else None), policy, signature

    def sign_url(
        self,
        url: str,
        *,
        expires: int,
        not_before: int | None = None,
        ip_address: str | None = None,
        policy_resource: str | None = None,
    ) -> str:
        """Sign ``url``: canned policy unless a start time, IP range or resource is given.

        Args:
            url: The absolute URL (normalised first).
            expires: ``DateLessThan``, UTC epoch seconds.
            not_before: ``DateGreaterThan`` (custom policy).
            ip_address: Client address or CIDR range (custom policy).
            policy_resource: The policy's ``Resource``, which may use ``*`` and ``?``
                wildcards (custom policy); the URL must match it.
        """
        url = normalize_url(url)
        canonical_path(split_url(url)[1])
        refuse_reserved(url, frozenset(_SIGNING_PARAMS), "CloudFront")
        encoded_policy, _, signature = self._policy_and_signature(
            url, expires, not_before, ip_address, policy_resource
        )
        head = f"Policy={encoded_policy}" if encoded_policy else f"Expires={int(expires)}"
        separator = "&" if "?" in url else "?"
        return f"{url}{separator}{head}&Signature={signature}{self._suffix}"

    def sign_cookies(
        self,
        url: str,
        *,
        expires: int,
        not_before: int | None = None,
        ip_address: str | None = None,
        policy_resource: str | None = None,
    ) -> dict[str, str]:
        """Signed cookies (name → value) granting what :meth:`sign_url` would grant.

        Set them with the attributes your site needs (``Domain``, ``Path``, ``Secure``,
        ``HttpOnly``); CloudFront reads only the name/value pairs.
        """
        url = normalize_url(url)
        encoded_policy, _, signature = self._policy_and_signature(
            url, expires, not_before, ip_address, policy_resource
        )
        cookies = (
            {"CloudFront-Policy": encoded_policy}
            if encoded_policy
            else {"CloudFront-Expires": str(int(expires))}
        )
        cookies["CloudFront-Signature"] = signature
        cookies["CloudFront-Key-Pair-Id"] = self._key_pair_id
        if self._algorithm == "SHA256":
            cookies["CloudFront-Hash-Algorithm"] = "SHA256"
        return cookies

    def scoped(self, prefix_url: str, *, expires: int) -> Callable[[str], str]:
        """One wildcard custom policy (``prefix*``) for every URL under ``prefix_url``.

        The whole HLS playlist costs one signature; each URL gets the same
        ``Policy``/``Signature``/``Key-Pair-Id`` parameters appended.
        """
        prefix = normalize_url(prefix_url)
        origin, scope = prefix_scope(prefix)
        if "*" in prefix:
            msg = f"the folder {prefix_url!r} contains '*': a policy Resource cannot name it"
            raise SigningError(msg)
        resource = prefix.rstrip("/") + "/*"  # a folder: /hls/1 never covers /hls/10/
        encoded_policy, _, signature = self._policy_and_signature(
            prefix, expires, None, None, resource
        )
        params = f"Policy={encoded_policy}&Signature={signature}{self._suffix}"

        folder = prefix.rstrip("/") + "/"

        def sign(url: str) -> str:
            normalized = normalize_url(url)
            if plainly_under(normalized, folder):
                return f"{normalized}?{params}"
            refuse_reserved(normalized, frozenset(_SIGNING_PARAMS), "CloudFront")
            url_origin, path, _ = split_url(normalized)
            inside = canonical_path(path)
            if (
                url_origin.lower() != origin
                or len(inside.segments) <= len(scope.scope_segments())
                or not inside.within(scope)
            ):
                msg = f"{url[:80]!r} is not a file under the policy's resource {resource!r}"
                raise SigningError(msg)
            return f"{normalized}{'&' if '?' in normalized else '?'}{params}"

        return sign

    def string_to_sign(
        self,
        url: str,
        *,
        expires: int,
        not_before: int | None = None,
        ip_address: str | None = None,
        policy_resource: str | None = None,
    ) -> bytes:
        """The policy bytes that get signed for these arguments."""
        url = normalize_url(url)
        resource = normalize_url(policy_resource) if policy_resource is not None else url
        return build_policy(resource, expires, not_before=not_before, ip_address=ip_address).encode(
            "utf-8"
        )

    def verify(
        self, signed_url: str, *, now: float | None = None, user_ip: str | None = None
    ) -> Verification:
        """Verify with this signer's public key (and any ``verify_keys``)."""
        return self.verifier.verify(signed_url, now=now, user_ip=user_ip)
