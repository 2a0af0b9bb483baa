"""Completion webhooks: a run may name a URL to be told, by a POST, when it ends.

The outbox is a table: the SQL that records a run's end (graphrun_finish_run,
graphrun_cancel_run) adds a row in the same transaction, so an ended run's webhook is never
forgotten. Every replica runs a `WebhookSender`, which takes due rows with `FOR UPDATE SKIP
LOCKED` (and leases them for a minute, so no two replicas send one at once), POSTs the run
and its final state, and records the outcome: delivered on a 2xx, else tried again with
backoff, up to `MAX_ATTEMPTS`. Delivery is at least once; `graphrun-webhook-id` (the run id)
lets the receiver drop repeats.

No server-side request forgery: a URL's host must match `GRAPHRUN_WEBHOOK_ALLOWED_HOSTS`
when the run is accepted, and when it is sent its addresses are resolved and a private,
loopback, link-local or reserved one is refused unless the host was listed by name or
address (a wildcard never admits one). The connection goes to the address checked.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from urllib.parse import urlsplit

import httpx
from google.protobuf import json_format

from .errors import FieldViolation, InvalidArgument
from .periodic import Periodic

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
LEASE_SECONDS = 60  # a delivery taken by one replica is not taken by another for this long
POLL_SECONDS = 1.0
REQUEST_TIMEOUT = 10.0


class WebhookPolicy:
    """Which webhook URLs runs may name, and the key that signs what is sent to them."""

    def __init__(self, allowed_hosts: str | None, secret: str | None):
        self.patterns = [h.strip().lower() for h in (allowed_hosts or "").split(",") if h.strip()]
        self.secret = secret
        if self.patterns and not secret:
            raise SystemExit(
                "--webhook-allowed-hosts / GRAPHRUN_WEBHOOK_ALLOWED_HOSTS needs a signing key: set "
                "--webhook-secret / GRAPHRUN_WEBHOOK_SECRET"
            )

    def check(self, url: str, field: str) -> None:
        """INVALID_ARGUMENT naming `field` unless runs may send webhooks to `url`."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgument([FieldViolation(field, "must be an http:// or https:// URL")])
        if not self.patterns:
            raise InvalidArgument(
                [FieldViolation(field, "webhooks are off on this server (GRAPHRUN_WEBHOOK_ALLOWED_HOSTS is not set)")]
            )
        if not any(fnmatch.fnmatchcase(parts.hostname.lower(), p) for p in self.patterns):
            raise InvalidArgument(
                [FieldViolation(field, f"host {parts.hostname!r} is not in GRAPHRUN_WEBHOOK_ALLOWED_HOSTS")]
            )

    def listed_by_name(self, host: str) -> bool:
        """Listed exactly (not through a wildcard): may be a private or loopback address."""
        return host.lower() in self.patterns

    def sign(self, timestamp: str, body: bytes) -> str:
        digest = hmac.new((self.secret or "").encode(), timestamp.encode() + b"." + body, hashlib.sha256)
        return "sha256=" + digest.hexdigest()


async def public_address(host: str, port: int, policy: WebhookPolicy) -> str:
    """An address of `host` it is safe to connect to; raises ValueError naming why not."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise ValueError(f"{host} has no address")
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global and not policy.listed_by_name(host):
            raise ValueError(f"{host} resolves to a non-public address ({ip}); list it by name to allow it")
    return addresses[0]


class WebhookSender(Periodic):
    """Delivers the due webhooks of the outbox, on every replica."""

    name = "graphrun-webhooks"
    interval = POLL_SECONDS

    def __init__(self, pool, policy: WebhookPolicy, payload):
        self.pool, self.policy = pool, policy
        self.payload = payload  # async (run_id) -> dict: the run and its final state, as JSON

    async def tick(self) -> None:
        try:
            await self.deliver_due()
        except Exception as exc:  # noqa: BLE001 - the next round tries again
            log.warning("webhook delivery round failed: %s", type(exc).__name__)

    async def deliver_due(self) -> int:
        """Send every due webhook (leased to this replica for a minute); how many were tried."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                """
                UPDATE graphrun_webhook SET next_attempt_at = now() + make_interval(secs => %s)
                 WHERE run_id IN (SELECT run_id FROM graphrun_webhook
                                   WHERE status = 'pending' AND next_attempt_at <= now()
                                   ORDER BY next_attempt_at LIMIT 20 FOR UPDATE SKIP LOCKED)
                RETURNING run_id::text AS run_id, url, attempts
                """,
                (LEASE_SECONDS,),
            )
            due = await cur.fetchall()
        await asyncio.gather(*(self._deliver(row["run_id"], row["url"], row["attempts"]) for row in due))
        return len(due)

    async def _deliver(self, run_id: str, url: str, attempts: int) -> None:
        error = None
        try:
            body = json.dumps(await self.payload(run_id), separators=(",", ":")).encode()
            error = await self._post(url, run_id, body)
        except Exception as exc:  # noqa: BLE001 - recorded on the delivery, tried again
            error = f"{type(exc).__name__}: {exc}"[:500]
        await self._record(run_id, attempts + 1, error)

    async def _post(self, url: str, run_id: str, body: bytes) -> str | None:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            address = await public_address(parts.hostname, port, self.policy)
        except (ValueError, OSError) as exc:
            return f"refused: {exc}"
        timestamp = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            "graphrun-webhook-id": run_id,
            "graphrun-timestamp": timestamp,
            "graphrun-signature": self.policy.sign(timestamp, body),
            "host": parts.netloc,
        }
        # Connect to the address just checked (DNS asked again could answer otherwise), with TLS
        # still verified for the URL's host name.
        target = url if parts.scheme == "https" else parts._replace(netloc=_with_port(address, port)).geturl()
        extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT, follow_redirects=False) as client:
            response = await client.post(target, content=body, headers=headers, extensions=extensions)
        return None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"

    async def _record(self, run_id: str, attempts: int, error: str | None) -> None:
        if error is None:
            status, next_in = "delivered", 0.0
        else:
            status = "failed" if attempts >= MAX_ATTEMPTS else "pending"
            next_in = min(2.0 ** (attempts - 1), 300.0)  # 1 s, 2 s, 4 s … at most 5 minutes
            log.info("webhook of run %s: try %d failed (%s)", run_id, attempts, error)
        async with self.pool.connection() as conn:
            await conn.execute(
                """
                UPDATE graphrun_webhook
                   SET status = %(status)s, attempts = %(attempts)s, last_error = %(error)s,
                       delivered_at = CASE WHEN %(status)s = 'delivered' THEN now() END,
                       next_attempt_at = now() + make_interval(secs => %(next_in)s)
                 WHERE run_id = %(run_id)s
                """,
                {"status": status, "attempts": attempts, "error": error, "next_in": next_in, "run_id": run_id},
            )


def _with_port(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def message_json(message) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)
