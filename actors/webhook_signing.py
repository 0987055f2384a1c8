"""Webhook signatures per the Standard Webhooks specification (https://www.standardwebhooks.com).

Receivers verify Vigil's webhooks with any Standard Webhooks library (the ``standardwebhooks``
package signs here, so what we send is what those libraries check):

- ``webhook-id``: one id per delivery, the same on every retry, so a receiver that got an
  attempt whose answer was lost recognises the retry and drops it;
- ``webhook-timestamp``: the attempt's Unix time (receivers refuse stale ones: replays);
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``, one per
  valid secret, space-separated: during a rotation both the new and the previous secret sign,
  so a receiver holding either accepts the delivery.

Secrets are ``whsec_`` plus base64 of 32 random bytes. Webhooks registered before this
change have a ``whsec_`` secret that is not strict base64, which libraries in different
languages decode differently: it signs as the Python library decodes it, and rotating it
(``POST /v1/webhooks/{id}/rotate-secret``) gives a standard one.
"""

from __future__ import annotations

import binascii
import uuid
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks import Webhook


def new_message_id() -> str:
    """The ``webhook-id`` of one delivery (kept across its retries)."""
    return f"msg_{uuid.uuid4().hex}"


def _signer(secret: str) -> Webhook:
    try:
        return Webhook(secret)
    except (binascii.Error, ValueError):  # an old secret that does not decode as base64
        return Webhook(secret.encode())


def signed_headers(
    secrets: Sequence[str], message_id: str, body: bytes, now: datetime
) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt, signed with every secret given."""
    text = body.decode()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(_signer(s).sign(message_id, now, text) for s in secrets),
    }
