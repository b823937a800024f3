"""Is my CDN checking tokens? A probe that asks the deployed edge, not the signer.

A signer that produces correct URLs proves nothing about the edge: token authentication
may be off in the pull zone, the edge may check the signature but not the expiry, or
ignore the IP binding. Each of those serves every URL, so the application looks fine and
the content is public. The probe signs a URL with the configured signer and fetches it
from the edge several ways, each with a known right answer:

* ``valid``: a fresh token must be served (200 or 206), with the cache policy's
  ``Cache-Control`` for HLS/DASH objects;
* ``unsigned``: the bare URL must be refused;
* ``tampered``: the same token with one character of its signature changed must be
  refused;
* ``expired``: a token that expired an hour ago must be refused;
* ``other_ip`` (only when tokens bind an IP): a token bound to ``192.0.2.1``
  (TEST-NET-1, never the prober's address) must be refused.

"Refused" is 401, 403 or 410 (nginx's ``secure_link`` answers 410 for expired links
when configured so); any other answer to a check that must be refused is a finding,
except 404/5xx, which say nothing about tokens and are reported as inconclusive.

Requests are ``GET`` with ``Range: bytes=0-0`` so probing a large file costs one byte,
redirects are not followed (a redirect is not a served object), and bodies are read at
most 64 KiB. Standard library only (``http.client``), so a health check can import it.
"""

from __future__ import annotations

import http.client
import inspect
import ssl
import time
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Literal

import attrs

from veza_cdn import _tracing
from veza_cdn._errors import CDNConfigurationError, SigningError
from veza_cdn._hls import DEFAULT_CACHE_POLICY, CachePolicy, UnknownMediaTypeError
from veza_cdn._service import Signer

if TYPE_CHECKING:  # the [otel] extra's types; never imported at run time
    from opentelemetry.trace import TracerProvider

CheckName = Literal["valid", "unsigned", "tampered", "expired", "other_ip"]
Outcome = Literal["served", "refused", "inconclusive", "unreachable", "skipped"]

OTHER_IP: Final = "192.0.2.1"
"""The address ``other_ip`` tokens are bound to: TEST-NET-1 (RFC 5737), never a client."""

_SERVED = frozenset({200, 206})
_REFUSED = frozenset({401, 403, 410})
_NOT_FOUND = 404
_BODY_LIMIT = 64 * 1024
_EXPIRED_AGO = 3600
# Keyword names under which the family's signers bind a token to a client address.
_IP_KEYWORDS: Final = ("user_ip", "ip", "ip_address")

Fetch = Callable[[str], "EdgeAnswer"]


@attrs.frozen
class EdgeAnswer:
    """What the edge answered to one request.

    Attributes:
        status: The HTTP status, or ``None`` when no answer came.
        cache_control: The ``Cache-Control`` header, if any.
        error: Why no answer came (connection refused, TLS, timeout), else ``None``.
    """

    status: int | None
    cache_control: str | None = None
    error: str | None = None


@attrs.frozen
class ProbeCheck:
    """One request of the probe and whether the edge answered it right.

    Attributes:
        name: ``valid``, ``unsigned``, ``tampered``, ``expired`` or ``other_ip``.
        expected: ``served`` for ``valid``, ``refused`` for every other check.
        outcome: What happened: ``served``, ``refused``, ``inconclusive`` (404, 5xx,
            a redirect), ``unreachable`` or ``skipped``.
        status: The HTTP status, when there was one.
        ok: The edge did what it must (a skipped check is ok).
        detail: For a human: what this answer means.
    """

    name: CheckName
    expected: Literal["served", "refused"]
    outcome: Outcome
    status: int | None
    ok: bool
    detail: str


@attrs.frozen
class CDNProbeReport:
    """Everything one probe of one URL found.

    Attributes:
        url: The URL probed, unsigned (no token in it).
        checks: One entry per request, in the order made.
        diagnosis: One sentence per problem found, for an operator; empty when none.
        elapsed_ms: Time the whole probe took.
    """

    url: str
    checks: tuple[ProbeCheck, ...]
    diagnosis: tuple[str, ...]
    elapsed_ms: float

    @property
    def ok(self) -> bool:
        """Whether the edge answered every check right."""
        return not self.diagnosis

    def check(self, name: CheckName) -> ProbeCheck | None:
        """The check called ``name``, if it was made."""
        return next((c for c in self.checks if c.name == name), None)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (``ok`` included); never contains a token or a key."""
        return {
            "ok": self.ok,
            "url": self.url,
            "checks": [attrs.asdict(c) for c in self.checks],
            "diagnosis": list(self.diagnosis),
            "elapsed_ms": self.elapsed_ms,
        }


def http_fetch(*, timeout: float = 10.0, ssl_context: ssl.SSLContext | None = None) -> Fetch:
    """The probe's default way to ask the edge: one ``GET`` of one byte, no redirects.

    Args:
        timeout: Seconds for connecting and for each read.
        ssl_context: For ``https`` edges (default: the system's trust store, verified).
    """

    def fetch(url: str) -> EdgeAnswer:
        parts = urllib.parse.urlsplit(url)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(
                parts.netloc, timeout=timeout, context=ssl_context or ssl.create_default_context()
            )
        else:
            connection = http.client.HTTPConnection(parts.netloc, timeout=timeout)
        try:
            connection.request(
                "GET", target, headers={"Range": "bytes=0-0", "User-Agent": "veza-cdn-probe"}
            )
            response = connection.getresponse()
            response.read(_BODY_LIMIT)
            return EdgeAnswer(response.status, response.getheader("Cache-Control"))
        except ssl.SSLError as exc:
            return EdgeAnswer(None, error=f"TLS failed: {exc.reason or exc}")
        except TimeoutError:
            return EdgeAnswer(None, error=f"no answer within {timeout:g} s")
        except OSError as exc:
            return EdgeAnswer(None, error=exc.strerror or type(exc).__name__)
        except http.client.HTTPException as exc:
            return EdgeAnswer(None, error=f"not an HTTP answer ({type(exc).__name__})")
        finally:
            connection.close()

    return fetch


def tamper(signed_url: str, unsigned_url: str) -> str:
    """``signed_url`` with one character of its token changed.

    The token is whatever signing added: the query parameter (or the path segment of a
    directory token) with the longest value that is not a plain number (an expiry). The
    middle character is changed, never the last one: the last base64 character carries
    padding bits some decoders ignore, so changing it may leave the digest intact.

    Raises:
        SigningError: Signing added nothing that can be changed.
    """
    signed = urllib.parse.urlsplit(signed_url)
    original = urllib.parse.urlsplit(unsigned_url)
    before = set(original.query.split("&")) if original.query else set()
    candidates: list[tuple[str, int, int]] = []  # (where, start, end) of a value
    offset = 0
    for part in signed.query.split("&") if signed.query else []:
        if part not in before and "=" in part:
            start = offset + part.index("=") + 1
            candidates.append(("query", start, offset + len(part)))
        offset += len(part) + 1
    offset = 0
    for segment in signed.path.split("/"):
        if segment not in original.path.split("/"):
            inner = 0
            for part in segment.split("&"):
                if "=" in part:
                    start = offset + inner + part.index("=") + 1
                    candidates.append(("path", start, offset + inner + len(part)))
                inner += len(part) + 1
        offset += len(segment) + 1
    text = {"query": signed.query, "path": signed.path}
    usable = [
        (where, start, end)
        for where, start, end in candidates
        if end - start >= 2 and not text[where][start:end].isdigit()
    ]
    if not usable:
        msg = "signing added no token value to change; cannot make a tampered URL"
        raise SigningError(msg)
    where, start, end = max(usable, key=lambda c: c[2] - c[1])
    value = text[where]
    middle = start + (end - start) // 2
    swapped = _swap(value[middle])
    changed = value[:middle] + swapped + value[middle + 1 :]
    if where == "query":
        return urllib.parse.urlunsplit(signed._replace(query=changed))
    return urllib.parse.urlunsplit(signed._replace(path=changed))


def _swap(char: str) -> str:
    """Another character of the same class (so the token still parses)."""
    if char.isdigit():
        return "1" if char != "1" else "2"
    if char.isalpha():
        if char.islower():
            return "q" if char != "q" else "x"
        return "Q" if char != "Q" else "X"
    return "A"


def _ip_keyword(signer: Signer) -> str | None:
    try:
        parameters = inspect.signature(signer.sign_url).parameters
    except (TypeError, ValueError):
        return None
    return next((name for name in _IP_KEYWORDS if name in parameters), None)


def _classify(answer: EdgeAnswer) -> Outcome:
    if answer.status is None:
        return "unreachable"
    if answer.status in _SERVED:
        return "served"
    if answer.status in _REFUSED:
        return "refused"
    return "inconclusive"


def _valid_check(answer: EdgeAnswer, path: str, policy: CachePolicy | None) -> ProbeCheck:
    outcome = _classify(answer)
    if outcome == "unreachable":
        detail = f"the edge is unreachable: {answer.error}"
    elif outcome == "refused":
        detail = (
            f"the edge refuses a valid token ({answer.status}): its key, token scheme or "
            "path does not match the signer's, or the clocks differ by more than the TTL"
        )
    elif outcome == "inconclusive":
        detail = (
            "the edge accepted the token but has no such object (404): probe an existing one"
            if answer.status == _NOT_FOUND
            else f"the edge answered {answer.status} to a valid token"
        )
    else:
        detail = "served"
        wanted = _wanted_cache_control(path, policy)
        if wanted is not None and answer.cache_control != wanted:
            return ProbeCheck(
                "valid",
                "served",
                outcome,
                answer.status,
                ok=False,
                detail=(
                    (
                        f"served, but Cache-Control is {answer.cache_control!r}"
                        if answer.cache_control is not None
                        else "served, but the edge sends no Cache-Control"
                    )
                    + f"; the cache policy says {wanted!r}"
                ),
            )
    return ProbeCheck("valid", "served", outcome, answer.status, outcome == "served", detail)


def _wanted_cache_control(path: str, policy: CachePolicy | None) -> str | None:
    if policy is None:
        return None
    try:
        return policy.header_for(path)
    except UnknownMediaTypeError:
        return None  # no policy for this media type: nothing to compare


_MEANING: Final[dict[str, str]] = {
    "unsigned": "the URL with no token at all",
    "tampered": "a token whose signature was changed",
    "expired": "a token that expired an hour ago",
    "other_ip": f"a token bound to another address ({OTHER_IP})",
}


def _refusal_check(name: CheckName, answer: EdgeAnswer) -> ProbeCheck:
    outcome = _classify(answer)
    what = _MEANING[name]
    if outcome == "refused":
        detail = f"refused {what} ({answer.status})"
    elif outcome == "served":
        detail = f"the edge SERVES {what} ({answer.status})"
    elif outcome == "unreachable":
        detail = f"no answer to {what}: {answer.error}"
    else:
        detail = f"{answer.status} to {what}: neither served nor refused"
    return ProbeCheck(name, "refused", outcome, answer.status, outcome != "served", detail)


def _diagnose(checks: dict[str, ProbeCheck]) -> tuple[str, ...]:
    served = {name for name, c in checks.items() if c.outcome == "served"}
    problems: list[str] = []
    valid = checks["valid"]
    if not valid.ok:
        problems.append(valid.detail)
    if {"tampered", "unsigned"} <= served:
        problems.append("the edge serves URLs without a valid token: token authentication is off")
    elif "tampered" in served:
        problems.append(
            "the edge serves tampered tokens: it checks that a token is present, not that "
            "its signature is right"
        )
    elif "unsigned" in served:
        problems.append("the edge serves the URL without a token: the path is not protected")
    if "expired" in served and "tampered" not in served:
        problems.append("the edge serves expired tokens: it checks the signature, not the expiry")
    if "other_ip" in served and "tampered" not in served:
        problems.append("the edge serves tokens bound to another IP: IP binding is off at the edge")
    for name in ("unsigned", "tampered", "expired", "other_ip"):
        check = checks.get(name)
        if check is not None and check.outcome == "inconclusive":
            problems.append(f"{name}: {check.detail}")
    return tuple(problems)


def probe_cdn(
    url: str,
    signer: Signer,
    *,
    ttl: int = 300,
    ip_bound: bool = False,
    client_ip: str | None = None,
    cache_policy: CachePolicy | None = DEFAULT_CACHE_POLICY,
    fetch: Fetch | None = None,
    now: float | None = None,
    tracer_provider: TracerProvider | None = None,
) -> CDNProbeReport:
    """Ask a deployed edge whether it really checks the tokens ``signer`` makes.

    Args:
        url: An existing object on the edge, unsigned (``https://cdn.example/a/b.m4s``).
        signer: The signer the application uses (``CDN.signer``, or any object with
            ``sign_url(url, *, expires)``).
        ttl: Lifetime of the valid token, in seconds.
        ip_bound: The application binds tokens to the client's IP: the valid token is
            bound to ``client_ip``, and the edge must refuse one bound to another address.
            The signer must accept one of ``user_ip``, ``ip`` or ``ip_address``.
        client_ip: The prober's address as the edge sees it (after any NAT); required
            with ``ip_bound``.
        cache_policy: The ``Cache-Control`` the edge must send for HLS/DASH objects
            (``None``: do not compare).
        fetch: How to ask the edge (default :func:`http_fetch`; tests pass their own).
        now: The current time, epoch seconds (default: the clock).
        tracer_provider: OpenTelemetry tracer provider (``veza-cdn[otel]``); the global
            one by default. One span, an event per check; no token is recorded.

    Raises:
        CDNConfigurationError: ``ip_bound`` with a signer that cannot bind an IP, or a
            URL that is not absolute http(s).
        SigningError: The signer refused the URL.
    """
    parts = urllib.parse.urlsplit(url)
    attributes = {"url.full": url.split("?", 1)[0], "server.address": parts.hostname or ""}
    with _tracing.span(_tracing.tracer(tracer_provider), "cdn probe", attributes) as current:
        report = _probe(
            url,
            signer,
            ttl=ttl,
            ip_bound=ip_bound,
            client_ip=client_ip,
            cache_policy=cache_policy,
            fetch=fetch,
            now=now,
        )
        if current is not None:
            for check in report.checks:
                current.add_event(
                    check.name, {"veza.probe.outcome": check.outcome, "veza.probe.ok": check.ok}
                )
            current.set_attribute("veza.probe.ok", report.ok)
            if not report.ok:
                current.set_status(_tracing.error_status(report.diagnosis[0]))
        return report


def _probe(
    url: str,
    signer: Signer,
    *,
    ttl: int,
    ip_bound: bool,
    client_ip: str | None,
    cache_policy: CachePolicy | None,
    fetch: Fetch | None,
    now: float | None,
) -> CDNProbeReport:
    started = time.perf_counter()
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        msg = f"the URL to probe must be absolute http(s), got {url[:80]!r}"
        raise CDNConfigurationError(msg)
    keyword = _ip_keyword(signer) if ip_bound else None
    if ip_bound and keyword is None:
        msg = f"{type(signer).__name__} cannot bind a token to an IP; probe without ip_bound"
        raise CDNConfigurationError(msg)
    if ip_bound and not client_ip:
        msg = "ip_bound needs client_ip: the prober's address as the edge sees it"
        raise CDNConfigurationError(msg)
    ask = fetch or http_fetch()
    clock = time.time() if now is None else now
    sign_for: Callable[..., str] = signer.sign_url  # keywords found by inspection above
    if keyword is not None:
        valid_url = sign_for(url, expires=int(clock) + ttl, **{keyword: client_ip})
    else:
        valid_url = signer.sign_url(url, expires=int(clock) + ttl)
    checks: dict[str, ProbeCheck] = {
        "valid": _valid_check(ask(valid_url), parts.path, cache_policy)
    }
    if checks["valid"].outcome != "unreachable":
        checks["unsigned"] = _refusal_check("unsigned", ask(url))
        checks["tampered"] = _refusal_check("tampered", ask(tamper(valid_url, url)))
        try:
            expired = signer.sign_url(url, expires=int(clock) - _EXPIRED_AGO)
        except SigningError as exc:
            checks["expired"] = ProbeCheck(
                "expired", "refused", "skipped", None, ok=True, detail=f"not signed: {exc}"
            )
        else:
            checks["expired"] = _refusal_check("expired", ask(expired))
        if keyword is not None:
            bound = sign_for(url, expires=int(clock) + ttl, **{keyword: OTHER_IP})
            checks["other_ip"] = _refusal_check("other_ip", ask(bound))
    return CDNProbeReport(
        url=url,
        checks=tuple(checks.values()),
        diagnosis=_diagnose(checks),
        elapsed_ms=round((time.perf_counter() - started) * 1000.0, 2),
    )
