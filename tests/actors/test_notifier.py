"""AlertNotifier as plain Python against a real PostgreSQL and real local HTTP/SMTP servers."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import secrets
import threading
import time
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncpg
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec as ec_key
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_key
from standardwebhooks import Webhook, WebhookVerificationError

from actors.mailer import SmtpSettings
from actors.notifier import (
    AlertNotifier,
    FcmClient,
    NotifierConfig,
    PushCredentials,
)
from actors.webhook_signing import signed_headers
from algorithms.delivery import RetrySchedule, wants
from storage import live, notifications
from storage.embedded import free_port
from storage.live import LiveAlert
from storage.notifications import new_webhook_secret
from tests.actors.conftest import LOGIN
from tests.e2e.test_delivery import Receiver
from tests.helpers import insert_device


@pytest.fixture
def alert(db: psycopg.Connection) -> dict:
    """An owner with a webhook, a profile, a device and an urgent alert, straight in the DB."""
    user, profile, device = insert_device(db, interval_s=300)
    alert_id = uuid.uuid4()
    now = time.time()
    db.execute(
        "INSERT INTO alerts (id, profile_id, device_id, rule, severity, value, threshold,"
        " reading_ts, received_at, fired_at) VALUES (%s, %s, %s, 'urgent_low', 'urgent', 50, 55,"
        " now(), now(), now())",
        (alert_id, profile, device),
    )
    a = LiveAlert(alert_id, "urgent_low", "fired", "urgent", 50.0, 55.0, now, now, now)
    return {"user": user, "profile": str(profile), "device": str(device), "a": a}


async def test_a_failing_receiver_is_retried_and_logged_once_delivered(
    database_url: str, db: psycopg.Connection, alert: dict
) -> None:
    receiver = Receiver(fail_first=3)
    notifier = None
    try:
        secret = new_webhook_secret()
        db.execute(
            "INSERT INTO webhooks (user_id, url, secret) VALUES (%s, %s, %s)",
            (alert["user"], receiver.url, secret),
        )
        notifier = AlertNotifier(
            NotifierConfig(
                database_url,
                retry=RetrySchedule(base_s=0.05),
                escalation_check_s=3600,
                catch_up_s=0,
                webhook_allow_private=True,  # the receiver listens on 127.0.0.1
            )
        )
        await notifier.start()
        assert await notifier.dispatch(alert["profile"], alert["device"], alert["a"], "fired") == 1
        assert await notifier.drain(30) == 0
        (headers, body, code) = receiver.requests[-1]
        assert code == 200 and len(receiver.requests) == 4
        assert Webhook(secret).verify(body, headers)["alert"]["id"] == str(alert["a"].id)
        # One delivery, one webhook-id on every attempt (receivers de-duplicate by it).
        ids = {h["webhook-id"] for h, _, _ in receiver.requests}
        assert (
            len(ids) == 1 and {json.loads(b)["delivery_id"] for _, b, _ in receiver.requests} == ids
        )
        log = db.execute(
            "SELECT attempt, status FROM alert_deliveries WHERE alert_id = %s ORDER BY id",
            (str(alert["a"].id),),
        ).fetchall()
        assert log == [(1, "retrying"), (2, "retrying"), (3, "retrying"), (4, "delivered")]
    finally:
        if notifier is not None:
            await notifier.stop()
        receiver.close()


async def test_a_rotated_secret_signs_beside_the_new_one_until_it_expires(
    database_url: str, db: psycopg.Connection, alert: dict
) -> None:
    receivers = [Receiver(), Receiver()]
    notifier = AlertNotifier(
        NotifierConfig(
            database_url, escalation_check_s=3600, catch_up_s=0, webhook_allow_private=True
        )
    )
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        rotated = []
        for receiver, overlap_s in zip(receivers, (3600, 0), strict=True):
            old = new_webhook_secret()
            (hook_id,) = db.execute(
                "INSERT INTO webhooks (user_id, url, secret) VALUES (%s, %s, %s) RETURNING id",
                (alert["user"], receiver.url, old),
            ).fetchone()
            row = await notifications.rotate_webhook_secret(pool, alert["user"], hook_id, overlap_s)
            assert row["secret"] != old
            rotated.append((old, row["secret"]))
        stranger = uuid.uuid4()
        assert await notifications.rotate_webhook_secret(pool, stranger, hook_id, 60) is None
        await notifier.start()
        assert await notifier.dispatch(alert["profile"], alert["device"], alert["a"], "fired") == 2
        assert await notifier.drain(30) == 0
        (overlapping, expired) = [r.requests for r in receivers]
        ((headers, body, _),) = overlapping
        for secret in rotated[0]:  # both verify while the previous one is still valid
            assert Webhook(secret).verify(body, headers)["alert"]["id"] == str(alert["a"].id)
        ((headers, body, _),) = expired
        assert Webhook(rotated[1][1]).verify(body, headers)["alert"]["id"] == str(alert["a"].id)
        with pytest.raises(WebhookVerificationError):
            Webhook(rotated[1][0]).verify(body, headers)
    finally:
        await pool.close()
        await notifier.stop()
        for r in receivers:
            r.close()


async def test_alert_email_goes_over_starttls_and_never_in_clear_to_a_remote_server(
    database_url: str, db: psycopg.Connection, alert: dict, remote_tls, remote_plain
) -> None:
    server, cert = remote_tls
    (email,) = db.execute("SELECT email FROM users WHERE id = %s", (alert["user"],)).fetchone()
    user, password = LOGIN
    tls = SmtpSettings(
        server.host, server.port, username=user, password=password, ca_file=str(cert)
    )
    plain = SmtpSettings(remote_plain.host, remote_plain.port)
    statuses = []
    for smtp in (tls, plain):
        notifier = AlertNotifier(
            NotifierConfig(database_url, escalation_check_s=3600, catch_up_s=0, smtp=smtp)
        )
        try:
            await notifier.start()
            await notifier.dispatch(alert["profile"], alert["device"], alert["a"], "fired")
            assert await notifier.drain(30) == 0
        finally:
            await notifier.stop()
        statuses = db.execute(
            "SELECT status, detail FROM alert_deliveries WHERE alert_id = %s AND channel ="
            " 'email' ORDER BY id",
            (str(alert["a"].id),),
        ).fetchall()
    (message,) = server.inbox.wait_for(email)
    assert message["Subject"] == "Vigil: URGENT: urgent low"
    assert server.inbox.sessions == [(True, user)]
    assert remote_plain.inbox.messages == []
    assert statuses == [
        ("delivered", None),
        ("failed", "refused: the SMTP server offers no TLS"),
    ]


def test_standard_verifiers_accept_each_secret_and_nothing_else() -> None:
    body, now = b'{"x":1}', datetime.now(UTC)
    new, old, stranger = new_webhook_secret(), new_webhook_secret(), new_webhook_secret()
    assert new.startswith("whsec_") and len(base64.b64decode(new[6:], validate=True)) == 32
    headers = signed_headers([new, old], "msg_1", body, now)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):  # during a rotation, a receiver holding either accepts
        assert Webhook(secret).verify(body, headers) == {"x": 1}
    refused = [
        (stranger, body, headers),
        (new, b'{"x":2}', headers),
        (new, body, {**headers, "webhook-id": "msg_2"}),
        (new, body, signed_headers([new], "msg_1", body, now - timedelta(hours=1))),
    ]
    for secret, data, sent in refused:
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(data, sent)


def test_secrets_from_before_standard_webhooks_still_sign() -> None:
    """Old secrets were ``whsec_`` + URL-safe base64, which not every library decodes: they
    sign as the Python library reads them (when it can), and never stop a delivery."""
    body, now = b'{"x":1}', datetime.now(UTC)
    for _ in range(50):
        legacy = "whsec_" + secrets.token_urlsafe(32)
        headers = signed_headers([legacy], "msg_1", body, now)
        try:
            verifier = Webhook(legacy)
        except binascii.Error:
            continue  # the library cannot read it either: only a rotation helps
        assert verifier.verify(body, headers) == {"x": 1}


def test_preferences_filter_all_but_urgent() -> None:
    person = {
        "escalation_only": False,
        "rules": ["low"],
        "quiet": [{"start_min": 0, "end_min": 1440}],
        "timezone": "UTC",
    }
    now = time.time()
    high = LiveAlert(uuid.uuid4(), "high", "fired", "warning", 260.0, 250.0, now, now, now)
    low = LiveAlert(uuid.uuid4(), "low", "fired", "warning", 65.0, 70.0, now, now, now)
    urgent = LiveAlert(uuid.uuid4(), "urgent_low", "fired", "urgent", 50.0, 55.0, now, now, now)
    assert not wants(person, high, "fired", now)  # not among the chosen rules
    assert not wants(person, low, "fired", now)  # chosen, but quiet hours
    assert wants(person, urgent, "fired", now)  # urgent always passes
    assert not wants({**person, "escalation_only": True}, urgent, "fired", now)
    assert wants({**person, "escalation_only": True}, urgent, "escalated", now)


# How the local push server answers each device token (as Apple and Google document).
APNS_ANSWERS = {
    "gone-device": (410, "Unregistered"),
    "bad-device": (400, "BadDeviceToken"),
    "wrong-topic-device": (400, "DeviceTokenNotForTopic"),
}
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
FCM_ANSWERS = {
    "gone-device": (404, "NOT_FOUND", "UNREGISTERED"),
    "invalid-device": (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"),
    "other-sender-device": (403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"),
}


def _kind(device_token: str) -> str:
    """What a test's device token stands for (a ``~suffix`` keeps tokens unique)."""
    return device_token.split("~", 1)[0]


class PushServer:
    """A local server speaking the APNs provider API and FCM HTTP v1 (with its OAuth token
    endpoint): it checks the credentials and answers as Apple and Google do, including their
    errors for tokens that are no longer valid."""

    def __init__(self, apns_public, fcm_public) -> None:
        self.requests: list[tuple[str, dict, dict]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def reply(self, code: int, body: dict | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/token":
                    form = dict(urllib.parse.parse_qsl(raw.decode()))
                    claims = jwt.decode(
                        form["assertion"],
                        fcm_public,
                        algorithms=["RS256"],
                        audience=f"http://127.0.0.1:{server.port}/token",
                    )
                    assert claims["scope"] == FcmClient.SCOPE
                    return self.reply(200, {"access_token": "ya29.local", "expires_in": 3600})
                body = json.loads(raw)
                server.requests.append((self.path, dict(self.headers), body))
                if self.path.startswith("/3/device/"):
                    token = self.headers["authorization"].removeprefix("bearer ")
                    try:
                        jwt.decode(token, apns_public, algorithms=["ES256"])
                    except jwt.InvalidTokenError:
                        return self.reply(403, {"reason": "InvalidProviderToken"})
                    code, reason = APNS_ANSWERS.get(_kind(self.path.rsplit("/", 1)[1]), (200, None))
                    return self.reply(code, {"reason": reason} if reason else None)
                if self.headers["Authorization"] != "Bearer ya29.local":
                    return self.reply(401, {"error": {"status": "UNAUTHENTICATED"}})
                if _kind(body["message"]["token"]) in FCM_ANSWERS:
                    code, status, error_code = FCM_ANSWERS[_kind(body["message"]["token"])]
                    details = [{"@type": FCM_ERROR_TYPE, "errorCode": error_code}]
                    error = {"code": code, "status": status, "details": details}
                    return self.reply(code, {"error": error})
                return self.reply(200, {"name": "projects/p/messages/1"})

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


_PEM = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8


def _pem(key) -> str:
    return key.private_bytes(*_PEM, serialization.NoEncryption()).decode()


def push_config(
    database_url: str, server: PushServer, ec, rsa, apns: bool = True, fcm: bool = True
) -> NotifierConfig:
    """The notifier set up for the local push server (``apns``/``fcm`` False: unconfigured)."""
    apns_fields = {
        "apns_key_pem": _pem(ec),
        "apns_key_id": "KEY123",
        "apns_team_id": "TEAM123",
        "apns_topic": "org.vigil.app",
    }
    fcm_fields = {
        "fcm_project_id": "vigil-test",
        "fcm_client_email": "push@vigil-test.iam.gserviceaccount.com",
        "fcm_private_key_pem": _pem(rsa),
        "fcm_token_url": f"{server.url}/token",
    }
    return NotifierConfig(
        database_url,
        retry=RetrySchedule(base_s=0.05),
        escalation_check_s=3600,
        catch_up_s=0,
        push=PushCredentials(
            apns_url=server.url,
            fcm_url=server.url,
            **(apns_fields if apns else {}),
            **(fcm_fields if fcm else {}),
        ),
    )


@pytest.fixture(scope="module")
def push_keys():
    ec = ec_key.generate_private_key(ec_key.SECP256R1())
    rsa = rsa_key.generate_private_key(public_exponent=65537, key_size=2048)
    return ec, rsa


async def test_push_through_apns_and_fcm_and_dead_tokens_are_dropped(
    database_url: str, db: psycopg.Connection, alert: dict, push_keys
) -> None:
    ec, rsa = push_keys
    server = PushServer(ec.public_key(), rsa.public_key())
    notifier = None
    try:
        for platform, token in (
            ("apns", "good-device"),
            ("apns", "gone-device"),
            ("fcm", "good-device"),
            ("fcm", "gone-device"),
        ):
            db.execute(
                "INSERT INTO push_tokens (user_id, platform, token) VALUES (%s, %s, %s)",
                (alert["user"], platform, token),
            )
        config = push_config(database_url, server, ec, rsa)
        notifier = AlertNotifier(config)
        await notifier.start()
        assert await notifier.dispatch(alert["profile"], alert["device"], alert["a"], "fired") == 4
        assert await notifier.drain(30) == 0
        apns = [r for r in server.requests if r[0].startswith("/3/device/")]
        fcm = [r for r in server.requests if r[0].startswith("/v1/projects/vigil-test/")]
        assert len(apns) == 2 and len(fcm) == 2
        _, headers, body = next(r for r in apns if r[0].endswith("good-device"))
        assert headers["apns-topic"] == "org.vigil.app" and headers["apns-priority"] == "10"
        assert headers["apns-push-type"] == "alert"
        assert body["aps"]["interruption-level"] == "critical"
        assert body["alert_id"] == str(alert["a"].id)
        _, _, fbody = next(r for r in fcm if r[2]["message"]["token"] == "good-device")
        assert fbody["message"]["android"]["priority"] == "HIGH"
        assert fbody["message"]["data"]["alert_id"] == str(alert["a"].id)
        log = db.execute(
            "SELECT channel, status FROM alert_deliveries WHERE alert_id = %s ORDER BY channel,"
            " status",
            (str(alert["a"].id),),
        ).fetchall()
        assert log == [
            ("apns", "delivered"),
            ("apns", "failed"),
            ("fcm", "delivered"),
            ("fcm", "failed"),
        ]
        left = db.execute(
            "SELECT platform, token FROM push_tokens WHERE user_id = %s ORDER BY platform",
            (alert["user"],),
        ).fetchall()
        assert left == [("apns", "good-device"), ("fcm", "good-device")]
    finally:
        if notifier is not None:
            await notifier.stop()
        server.server.shutdown()


# (platform, device token, how the notifier is set up, words the delivery log shows, kept?)
PUSH_ANSWERS = [
    ("apns", "gone-device", "right", "410 Unregistered", False),
    ("apns", "bad-device", "right", "400 BadDeviceToken", False),
    ("apns", "wrong-topic-device", "right", "400 DeviceTokenNotForTopic", True),
    ("apns", "good-device", "wrong key", "403 InvalidProviderToken", True),
    ("apns", "good-device", "unconfigured", "APNs is not configured", True),
    ("fcm", "gone-device", "right", "404 UNREGISTERED", False),
    ("fcm", "invalid-device", "right", "400 INVALID_ARGUMENT", True),
    ("fcm", "other-sender-device", "right", "403 PERMISSION_DENIED", True),
    ("fcm", "good-device", "unconfigured", "FCM is not configured", True),
]


@pytest.mark.parametrize(("platform", "token", "setup", "detail", "kept"), PUSH_ANSWERS)
async def test_a_push_token_is_deleted_only_when_the_service_says_it_is_unregistered(
    database_url: str,
    db: psycopg.Connection,
    alert: dict,
    push_keys,
    platform: str,
    token: str,
    setup: str,
    detail: str,
    kept: bool,
) -> None:
    ec, rsa = push_keys
    server = PushServer(ec.public_key(), rsa.public_key())
    token = f"{token}~{uuid.uuid4().hex[:8]}"  # device tokens are unique across accounts
    db.execute(
        "INSERT INTO push_tokens (user_id, platform, token) VALUES (%s, %s, %s)",
        (alert["user"], platform, token),
    )
    signing_key = ec_key.generate_private_key(ec_key.SECP256R1()) if setup == "wrong key" else ec
    configured = setup != "unconfigured"
    config = push_config(database_url, server, signing_key, rsa, apns=configured, fcm=configured)
    notifier = AlertNotifier(config)
    try:
        await notifier.start()
        assert await notifier.dispatch(alert["profile"], alert["device"], alert["a"], "fired") == 1
        assert await notifier.drain(30) == 0
        (status, logged) = db.execute(
            "SELECT status, detail FROM alert_deliveries WHERE alert_id = %s",
            (str(alert["a"].id),),
        ).fetchone()
        assert status == "failed" and detail in logged
        left = db.execute(
            "SELECT token FROM push_tokens WHERE user_id = %s", (alert["user"],)
        ).fetchall()
        assert left == ([(token,)] if kept else [])
    finally:
        await notifier.stop()
        server.server.shutdown()


async def test_a_starting_notifier_sends_the_firings_and_repeats_it_missed(
    database_url: str, db: psycopg.Connection
) -> None:
    user, profile, device = insert_device(db, interval_s=300)
    receiver = Receiver()
    db.execute(
        "INSERT INTO webhooks (user_id, url, secret) VALUES (%s, %s, 'shh')", (user, receiver.url)
    )

    def alert(rule: str, state: str, notified_min_ago: list[float], delivered_min_ago=None):
        alert_id = uuid.uuid4()
        db.execute(
            "INSERT INTO alerts (id, profile_id, device_id, rule, severity, value, threshold,"
            " state, reading_ts, received_at, fired_at, notified_at) VALUES (%s, %s, %s, %s,"
            " 'urgent', 50, 55, %s, now() - interval '8 minutes',"
            " now() - interval '8 minutes', now() - interval '8 minutes',"
            " (SELECT array_agg(now() - m * interval '1 minute') FROM unnest(%s::float8[]) m))",
            (alert_id, profile, device, rule, state, notified_min_ago),
        )
        if delivered_min_ago is not None:
            db.execute(
                "INSERT INTO alert_deliveries (alert_id, event, user_id, channel, status, at)"
                " VALUES (%s, 'fired', %s, 'webhook', 'delivered',"
                " now() - %s * interval '1 minute')",
                (alert_id, user, delivered_min_ago),
            )
        return str(alert_id)

    missed_repeat = alert("urgent_low", "fired", [8, 3], delivered_min_ago=7.9)
    missed_firing = alert("urgent_low_soon", "fired", [8])
    delivered = alert("signal_loss", "fired", [8, 3], delivered_min_ago=2.9)
    acknowledged = alert("low", "acknowledged", [8])
    too_old = alert("high", "fired", [30])

    notifier = AlertNotifier(
        NotifierConfig(database_url, escalation_check_s=3600, webhook_allow_private=True)
    )
    try:
        await notifier.start()
        for _ in range(300):
            if len(receiver.requests) >= 2:
                break
            await asyncio.sleep(0.1)
        await notifier.drain(30)
        sent = {
            json.loads(body)["alert"]["id"]: json.loads(body)["event"]
            for _, body, _ in receiver.requests
        }
        assert sent == {missed_repeat: "alert.repeated", missed_firing: "alert.fired"}
        assert not {delivered, acknowledged, too_old} & set(sent)
    finally:
        await notifier.stop()
        receiver.close()


async def test_one_payload_of_several_devices_dispatches_each_alert(
    database_url: str, db: psycopg.Connection
) -> None:
    """A payload may carry several devices' alert changes, one per line (``live.messages``):
    every fired or repeated alert in it is delivered (real PostgreSQL, a real webhook
    receiver), and a cleared one is not."""
    receiver = Receiver()
    notifier = AlertNotifier(
        NotifierConfig(
            database_url, escalation_check_s=3600, catch_up_s=0, webhook_allow_private=True
        )
    )
    now = time.time()
    updates, wanted = [], set()
    for rule, event in (("high", "fired"), ("low", "cleared"), ("low", "repeated")):
        user, profile, device = insert_device(db, interval_s=300)
        db.execute(
            "INSERT INTO webhooks (user_id, url, secret) VALUES (%s, %s, %s)",
            (user, receiver.url, new_webhook_secret()),
        )
        alert_id = uuid.uuid4()
        db.execute(
            "INSERT INTO alerts (id, profile_id, device_id, rule, severity, value, threshold,"
            " reading_ts, received_at, fired_at) VALUES (%s, %s, %s, %s, 'warning', 60, 70,"
            " now(), now(), now())",
            (alert_id, profile, device, rule),
        )
        a = LiveAlert(alert_id, rule, event, "warning", 60.0, 70.0, now, now, now)
        updates.append(live.DeviceUpdate(profile, device, "glucose", None, (a,), "req"))
        if event != "cleared":
            wanted.add((str(alert_id), f"alert.{event}"))
    try:
        await notifier.start()
        payload = live.SEPARATOR.join(live.encode(u) for u in updates)
        notifier._on_notify(None, 0, live.ALERTS_CHANNEL, payload)
        await asyncio.sleep(0)
        assert await notifier.drain(30) == 0
        got = {
            (json.loads(body)["alert"]["id"], json.loads(body)["event"])
            for _, body, _ in receiver.requests
        }
        assert got == wanted
    finally:
        await notifier.stop()
        receiver.close()
