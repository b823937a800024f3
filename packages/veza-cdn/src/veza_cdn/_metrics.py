"""Optional Prometheus counters, registered only in a registry the caller passes.

A library that registers metrics at import, or in the global default registry, crashes
its host the day two components (or two versions) register the same name; the platform
veza comes from lost a start-up to exactly that. Here nothing is registered until the
application creates a :class:`CDNMetrics` with *its* registry, and the signers and the
resolver only ever receive that object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from veza_cdn._errors import CDNConfigurationError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry


class CDNMetrics:
    """veza-cdn's counters in the caller's registry (needs ``veza-cdn[metrics]``).

    Create one per registry and share it between signers, CDN services and resolvers.

    Args:
        registry: The application's ``prometheus_client.CollectorRegistry``.
        namespace: Metric name prefix.

    Raises:
        CDNConfigurationError: prometheus-client is missing, or this registry already
            holds veza-cdn's metrics (create one :class:`CDNMetrics` per registry).
    """

    def __init__(self, registry: CollectorRegistry, *, namespace: str = "veza") -> None:
        try:
            from prometheus_client import Counter
        except ImportError:
            msg = "CDN metrics need prometheus-client: pip install 'veza-cdn[metrics]'"
            raise CDNConfigurationError(msg) from None
        if cast("object", registry) is None:  # untyped callers: it would register nowhere
            msg = "pass your CollectorRegistry: veza-cdn never registers in the global one"
            raise CDNConfigurationError(msg)
        try:
            self.signed: Any = Counter(
                "cdn_signed_urls",
                "URLs signed, by provider",
                ["provider"],
                namespace=namespace,
                registry=registry,
            )
            self.signing_failures: Any = Counter(
                "cdn_signing_failures",
                "Signing attempts that raised, by provider",
                ["provider"],
                namespace=namespace,
                registry=registry,
            )
            self.resolutions: Any = Counter(
                "cdn_playback_resolutions",
                "Playback URLs resolved, by source (cdn or fallback) and reason",
                ["source", "reason"],
                namespace=namespace,
                registry=registry,
            )
            self.verifications: Any = Counter(
                "cdn_verifications",
                "Token verifications, by provider and result",
                ["provider", "result"],
                namespace=namespace,
                registry=registry,
            )
        except ValueError as exc:  # prometheus_client's duplicate registration error
            msg = (
                "this registry already holds veza-cdn metrics: create one CDNMetrics per "
                f"registry and share it ({exc})"
            )
            raise CDNConfigurationError(msg) from None
