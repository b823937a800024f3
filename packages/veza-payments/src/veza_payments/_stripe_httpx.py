"""stripe-python's HTTP transport for :class:`~veza_payments.AsyncStripeConnect`.

stripe-python builds every request (URL, form body, headers) and parses every answer;
a transport only moves bytes. Its bundled ``HTTPXClient`` passes the encoded form as
``data=<str>``, which httpx 0.28 deprecates (a warning per call), so this one sends it
as ``content=``; and it percent-encodes ``[`` and ``]`` in the query string
(``created%5Bgte%5D=1``), as urllib3 does under the sync client's ``requests``
transport, where stripe-python leaves them literal: both clients send the same bytes
(``test_the_async_client_sends_what_the_sync_one_sends``). It is async only: the sync client keeps
stripe-python's ``requests`` transport, as since 0.1.0.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.parse
from collections.abc import Awaitable, Mapping
from typing import NoReturn

import httpx
import stripe


def _as_urllib3_sends(url: str) -> str:
    """``url`` with ``[``/``]`` in its query percent-encoded, as the sync transport sends it."""
    parts = urllib.parse.urlsplit(url)
    if not parts.query:
        return url
    query = parts.query.replace("[", "%5B").replace("]", "%5D")
    return urllib.parse.urlunsplit(parts._replace(query=query))


class AsyncHTTPXTransport(stripe.HTTPClient):
    """One ``httpx.AsyncClient`` (pooled connections, Stripe's CA bundle).

    Args:
        timeout: Seconds per phase of one attempt (connect, write, read), as the
            ``requests`` transport of the sync client.
    """

    name = "httpx"

    def __init__(self, *, timeout: float) -> None:
        super().__init__()
        context = ssl.create_default_context(cafile=stripe.ca_bundle_path)
        self._client = httpx.AsyncClient(verify=context, timeout=timeout)

    async def request_async(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        post_data: object = None,
    ) -> tuple[bytes, int, Mapping[str, str]]:
        """Send one request; a transport failure is stripe-python's ``APIConnectionError``."""
        try:
            response = await self._client.request(
                method, _as_urllib3_sends(url), headers=dict(headers), content=_form(post_data)
            )
        except httpx.HTTPError as exc:
            msg = f"Unexpected error communicating with Stripe ({type(exc).__name__})"
            raise stripe.APIConnectionError(msg, should_retry=True) from exc
        return response.content, response.status_code, response.headers

    async def request_stream_async(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        post_data: object = None,
    ) -> NoReturn:
        """Not used by ``AsyncStripeConnect`` (no streamed Stripe endpoints)."""
        msg = "AsyncStripeConnect does not stream Stripe responses"
        raise NotImplementedError(msg)

    async def close_async(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    def sleep_async(self, secs: float) -> Awaitable[None]:
        """stripe-python's own retries are off (``max_network_retries=0``); kept for the ABC."""
        return asyncio.sleep(secs)


def _form(post_data: object) -> str | bytes | None:
    """stripe-python's encoded form body (a ``str``), or ``None`` for a request without one."""
    if post_data is None or post_data in ("", b""):
        return None
    if isinstance(post_data, str | bytes):
        return post_data
    msg = f"stripe-python passed a {type(post_data).__name__} body; expected an encoded form"
    raise TypeError(msg)


__all__ = ["AsyncHTTPXTransport"]
