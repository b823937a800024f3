"""veza-cdn: signed CDN URLs that edges verify before serving.

Bunny, CloudFront, Google Cloud CDN, Akamai and Cloudflare/R2 signing and
verification, HLS cache policies and playlist signing.
"""

from veza_cdn._version import __version__

__all__ = ["__version__"]
