"""Sending one delivery, as the Standard Webhooks specification has it.

The body is `{"type", "timestamp", "data"}` (JSON). The headers: `webhook-id` (the event's id:
the same on every attempt and redelivery, so a receiver drops duplicates by it),
`webhook-timestamp` (this attempt's time, in seconds) and `webhook-signature` (`v1,<base64>`,
signed by the standardwebhooks library; during a secret rotation's overlap one signature per
secret, space-separated). A 2xx answer is a delivery; anything else, no answer within
ORDERGATE_WEBHOOK_TIMEOUT_SECONDS, a refused connection or a redirect is a failed attempt.

The target's name is resolved here, the addresses checked against the forbidden networks
(targets.py), and the connection made to the checked address, with the name as Host and TLS
server name: a name that resolves to an internal address by the time of sending (DNS
rebinding) is refused, not followed. The answer's body is never read.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from standardwebhooks.webhooks import Webhook

from ...storage import webhooks as store
from ..errors import ServiceError
from .deliveries import Sent
from .targets import Networks, check_target

USER_AGENT = "Ordergate-Webhooks/1"


def body(event: store.Event) -> bytes:
    return json.dumps(
        {
            "type": event.type,
            "timestamp": event.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "data": event.data,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def signed_headers(
    event_id: str, secrets: list[str], payload: bytes, at: datetime
) -> dict[str, str]:
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(Webhook(s).sign(event_id, at, payload) for s in secrets),
    }


class Sender:
    def __init__(self, allowed: Networks, timeout: float) -> None:
        self._allowed = allowed
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={"user-agent": USER_AGENT},
            # Connections are pinned to checked addresses, not kept between deliveries: an
            # endpoint's name may resolve elsewhere next time.
            limits=httpx.Limits(max_keepalive_connections=0),
            trust_env=False,  # no proxy from the environment between us and the check
        )
        self._timeout = timeout

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, due: store.Due) -> Sent:
        started = time.monotonic()
        try:
            return await asyncio.wait_for(self._send(due, started), timeout=self._timeout + 5)
        except TimeoutError:
            return Sent(None, _ms(started), f"no answer within {self._timeout:g}s")

    async def _send(self, due: store.Due, started: float) -> Sent:
        url = due.endpoint.url
        try:
            addresses = await asyncio.to_thread(check_target, url, self._allowed, resolve=True)
        except ServiceError as refused:
            return Sent(None, _ms(started), refused.message)
        now = datetime.now(UTC)
        payload = body(due.event)
        headers = {
            "content-type": "application/json",
            **signed_headers(due.event.id, due.endpoint.secrets(now), payload, now),
        }
        parts = urlsplit(url)
        host = parts.hostname or ""
        headers["host"] = parts.netloc.rpartition("@")[2]
        address = addresses[0]
        pinned = f"[{address}]" if ":" in address else address
        if parts.port:
            pinned += f":{parts.port}"
        target = urlunsplit((parts.scheme, pinned, parts.path or "/", parts.query, ""))
        extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
        try:
            async with self._client.stream(
                "POST", target, content=payload, headers=headers, extensions=extensions
            ) as answer:
                status = answer.status_code
        except httpx.TimeoutException:
            return Sent(None, _ms(started), f"no answer within {self._timeout:g}s")
        except httpx.HTTPError as failed:
            return Sent(None, _ms(started), f"{type(failed).__name__}: {failed}"[:300])
        if 300 <= status < 400:
            return Sent(status, _ms(started), "redirects are not followed")
        return Sent(status, _ms(started), "" if 200 <= status < 300 else f"HTTP {status}")


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
