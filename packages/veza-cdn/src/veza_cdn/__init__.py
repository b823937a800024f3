"""veza-cdn: signed CDN URLs that edges verify before serving.

Bunny, CloudFront, Google Cloud CDN, Akamai and Cloudflare/R2 signing and
verification, HLS cache policies and playlist signing.
"""

from veza_cdn._akamai import AkamaiSigner
from veza_cdn._bunny import BunnySigner
from veza_cdn._cloudflare import CloudflareHMACSigner
from veza_cdn._cloudfront import CloudFrontSigner, CloudFrontVerifier
from veza_cdn._config import CDNConfig
from veza_cdn._encoding import normalize_url
from veza_cdn._errors import (
    CDNConfigurationError,
    CDNDisabledError,
    CDNError,
    InvalidTokenError,
    SigningError,
)
from veza_cdn._expiry import ExpiryPolicy
from veza_cdn._fallback import PlaybackResolver, Resolution
from veza_cdn._google import GoogleCDNSigner
from veza_cdn._hls import (
    CachePolicy,
    PlaylistError,
    UnknownMediaTypeError,
    cache_control_for,
    sign_playlist,
)
from veza_cdn._metrics import CDNMetrics
from veza_cdn._paths import CanonicalPath, UnsafePathError, canonical_path
from veza_cdn._probe import CDNProbeReport, ProbeCheck, probe_cdn
from veza_cdn._providers import (
    AkamaiConfig,
    BunnyConfig,
    CloudflareConfig,
    CloudFrontConfig,
    GoogleConfig,
    ProviderConfig,
    R2Config,
    provider_config,
)
from veza_cdn._r2 import R2Presigner
from veza_cdn._secret import Secret
from veza_cdn._service import (
    CDN,
    SIGNER_FACTORIES,
    Signer,
    SignerFactory,
    Verifier,
    build_signer,
)
from veza_cdn._sigv4 import verify_presigned_url
from veza_cdn._verification import FailureReason, Verification
from veza_cdn._version import __version__

__all__ = [
    "CDN",
    "SIGNER_FACTORIES",
    "AkamaiConfig",
    "AkamaiSigner",
    "BunnyConfig",
    "BunnySigner",
    "CDNConfig",
    "CDNConfigurationError",
    "CDNDisabledError",
    "CDNError",
    "CDNMetrics",
    "CDNProbeReport",
    "CachePolicy",
    "CanonicalPath",
    "CloudFrontConfig",
    "CloudFrontSigner",
    "CloudFrontVerifier",
    "CloudflareConfig",
    "CloudflareHMACSigner",
    "ExpiryPolicy",
    "FailureReason",
    "GoogleCDNSigner",
    "GoogleConfig",
    "InvalidTokenError",
    "PlaybackResolver",
    "PlaylistError",
    "ProbeCheck",
    "ProviderConfig",
    "R2Config",
    "R2Presigner",
    "Resolution",
    "Secret",
    "Signer",
    "SignerFactory",
    "SigningError",
    "UnknownMediaTypeError",
    "UnsafePathError",
    "Verification",
    "Verifier",
    "__version__",
    "build_signer",
    "cache_control_for",
    "canonical_path",
    "normalize_url",
    "probe_cdn",
    "provider_config",
    "sign_playlist",
    "verify_presigned_url",
]
