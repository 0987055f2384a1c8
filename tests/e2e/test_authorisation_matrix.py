"""The authorisation matrix: every route of the OpenAPI document against every kind of caller.

Each route has an entry: which callers are allowed, and how to build a valid request for
it. A route without an entry fails the test, so a new route cannot ship unclassified.
Denied callers must get 401 (anonymous, device token), 403 (a follower whose share lacks
the scope, a user on an admin route) or 404 (no relation: unrelated user, revoked follower,
admin on someone's health data), never the data.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import jwt

from api.openapi import openapi_document
from tests.e2e.test_sharing import follow, invite
from tests.helpers import Account, minutes_ago, self_profile, sign_up

ANON, OWNER, READER, WATCHER, CARER = "anonymous", "owner", "f:readings", "f:alerts", "f:manage"
REVOKED, STRANGER, DEVICE, ADMIN = "revoked", "unrelated", "device-token", "admin"
CALLERS = (ANON, OWNER, READER, WATCHER, CARER, REVOKED, STRANGER, DEVICE, ADMIN)
FOLLOWERS = frozenset({READER, WATCHER, CARER})  # active shares, one scope each
USERS = frozenset({OWNER, READER, WATCHER, CARER, REVOKED, STRANGER, ADMIN})
EVERYONE = frozenset(CALLERS)
ANY_RELATION = frozenset({OWNER} | FOLLOWERS)
READINGS = frozenset({OWNER, READER})
ALERTS = frozenset({OWNER, WATCHER})
MANAGE = frozenset({OWNER, CARER})
MANAGER = frozenset({OWNER})
ADMINS = frozenset({ADMIN})


@dataclass
class World:
    """Everything the requests refer to, made once through the API."""

    client: httpx.Client
    accounts: dict[str, Account]
    headers: dict[str, dict[str, str]]
    profile: str  # the owner's self profile: what the followers follow
    device: dict  # on it, with readings; the device-token caller is its upload token
    alert: str  # an alert (high) of the profile
    event: str
    report_token: str
    dependent: str  # another profile of the owner
    login: Account  # a bystander whose credentials the public token routes use
    inviter: Account  # another manager whose invitations callers accept, decline, leave
    dependent_of_inviter: str
    ts: itertools.count = field(default_factory=itertools.count)

    def password(self, caller: str) -> str:
        return self.accounts[caller].password if caller in self.accounts else "not a user"

    def own(self, caller: str, collection: str, body: dict) -> str:
        """The id of a new item of ``caller``'s own (a made-up id for non-users)."""
        if caller not in USERS:
            return str(uuid.uuid4())
        r = self.client.post(collection, json=body, headers=self.headers[caller])
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def bystander_id(self) -> str:
        return user_id(sign_up(self.client))

    def owner_post(self, path: str, **kwargs) -> dict:
        r = self.client.post(path, headers=self.headers[OWNER], **kwargs)
        assert r.status_code in (200, 201), r.text
        return r.json()

    def fresh_device(self) -> dict:
        return self.accounts[OWNER].device("glucose")

    def share_of(self, caller: str) -> str:
        """A share of the inviter's profile that ``caller`` follows (callers who cannot
        follow get a made-up id: they are refused before it is looked at)."""
        if caller not in USERS:
            return str(uuid.uuid4())
        code = invite(self.inviter, self_profile(self.inviter), ["readings"])["code"]
        r = self.client.post("/v1/shares/accept", json={"code": code}, headers=self.headers[caller])
        assert r.status_code == 200, r.text
        return r.json()["id"]


Build = Callable[[World, str], dict]


@dataclass(frozen=True)
class Route:
    allowed: frozenset[str]
    build: Build = lambda w, c: {}
    ok: frozenset[int] = frozenset({200, 201, 202, 204})
    denied_user: int | None = None  # status for every denied user; default: 403/404 rule


def reading(w: World) -> dict:
    ts = minutes_ago(40) + timedelta(seconds=next(w.ts))
    return {"json": {"readings": [{"ts": ts.isoformat(), "value": 118.0}]}}


HOOK = "http://127.0.0.1:9/vigil-matrix"  # the discard port: nothing is ever sent out


def push_token() -> dict:
    return {"platform": "apns", "token": uuid.uuid4().hex}


def note() -> dict:
    return {"json": {"kind": "note", "ts": minutes_ago(3).isoformat(), "note": "matrix"}}


def invitation_code(w: World, caller: str) -> dict:
    """A fresh invitation to the inviter's other profile, for any caller to answer."""
    return {"json": {"code": invite(w.inviter, w.dependent_of_inviter, ["alerts"])["code"]}}


def report_link_of_owner(w: World, caller: str) -> dict:
    """A fresh report link of the owner's profile."""
    link = w.owner_post(f"/v1/profiles/{w.profile}/report-links", json={})
    return {"path": {"link_id": link["id"]}}


def user_id(account: Account) -> str:
    token = account.headers["Authorization"].removeprefix("Bearer ")
    return jwt.decode(token, options={"verify_signature": False})["sub"]


P = "/v1/profiles/{profile_id}"
D = "/v1/devices/{device_id}"


def nightscout_on(w: World, caller: str) -> dict:
    """The owner turns the profile's Nightscout site on (again) before the request."""
    r = w.client.put(f"/v1/profiles/{w.profile}/nightscout", headers=w.headers[OWNER])
    assert r.status_code == 200, r.text
    return {}


def nightscout_token_of_owner(w: World, caller: str) -> dict:
    nightscout_on(w, caller)
    token = w.owner_post(f"/v1/profiles/{w.profile}/nightscout/tokens", json={"name": "m"})
    return {"path": {"token_id": token["id"]}}


NIGHTSCOUT_SAMPLE = Path(__file__).parent.parent / "data" / "history" / "nightscout-entries.json"


def history_file(w: World, caller: str) -> dict:
    return {"files": {"file": ("entries.json", NIGHTSCOUT_SAMPLE.read_bytes())}}


def fhir_submission(w: World, caller: str) -> dict:
    ts = (minutes_ago(50) + timedelta(seconds=next(w.ts))).isoformat()
    reading = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "99504-3"}]},
        "subject": {"reference": f"Patient/{w.profile}"},
        "effectiveDateTime": ts,
        "valueQuantity": {"value": 120, "unit": "mg/dL", "system": "http://unitsofmeasure.org",
                          "code": "mg/dL"},
    }  # fmt: skip
    return {"json": {"resourceType": "Bundle", "type": "transaction",
                     "entry": [{"resource": reading}]}}  # fmt: skip


def import_of_owner(w: World, caller: str) -> dict:
    url = f"/v1/devices/{w.device['id']}/import"
    r = w.client.post(url, headers=w.headers[OWNER], **history_file(w, caller))
    assert r.status_code == 202, r.text
    return {"path": {"import_id": r.json()["id"]}}


MATRIX: dict[tuple[str, str], Route] = {
    # public
    ("GET", "/healthz"): Route(EVERYONE),
    ("GET", "/readyz"): Route(EVERYONE),
    ("GET", "/.well-known/jwks.json"): Route(EVERYONE),
    ("GET", "/.well-known/openid-configuration"): Route(EVERYONE),
    ("POST", "/v1/auth/signup"): Route(
        EVERYONE,
        lambda w, c: {
            "json": {
                "email": f"m-{uuid.uuid4().hex[:10]}@example.com",
                "password": "matrix passphrase 1",
                "name": "M",
            }
        },
    ),
    ("POST", "/v1/auth/token"): Route(
        EVERYONE, lambda w, c: {"data": {"username": w.login.email, "password": w.login.password}}
    ),
    ("POST", "/v1/auth/logout"): Route(
        EVERYONE,
        lambda w, c: {
            "json": {
                "refresh_token": w.client.post(
                    "/v1/auth/token",
                    data={"username": w.login.email, "password": w.login.password},
                ).json()["refresh_token"]
            }
        },
    ),
    ("POST", "/v1/auth/password-reset"): Route(
        EVERYONE, lambda w, c: {"json": {"email": w.login.email}}
    ),
    ("POST", "/v1/auth/password-reset/confirm"): Route(
        EVERYONE,  # the reset token is the credential: a made-up one is refused as input
        lambda w, c: {"json": {"token": "x" * 43, "new_password": "another long passphrase"}},
        ok=frozenset({422}),
    ),
    # single sign-on: the provider's code and the one-time state are the credentials
    ("GET", "/v1/auth/sso/{provider}/login"): Route(
        EVERYONE, lambda w, c: {"path": {"provider": "corp"}}
    ),
    ("GET", "/v1/auth/sso/{provider}/callback"): Route(
        EVERYONE,  # a made-up state is refused alike for every caller
        lambda w, c: {"path": {"provider": "corp"}, "params": {"code": "x", "state": "y"}},
        ok=frozenset({401}),
    ),
    ("GET", "/v1/report-links/{token}"): Route(
        EVERYONE, lambda w, c: {"path": {"token": w.report_token}, "params": {"format": "json"}}
    ),
    # about the caller themself
    ("GET", "/v1/profiles"): Route(USERS),
    ("POST", "/v1/profiles"): Route(USERS, lambda w, c: {"json": {"name": "Kid"}}),
    ("GET", "/v1/devices"): Route(USERS),
    ("POST", "/v1/auth/logout-all"): Route(USERS),
    ("GET", "/v1/shares/following"): Route(USERS),
    ("POST", "/v1/shares/accept"): Route(USERS, invitation_code),
    ("POST", "/v1/shares/decline"): Route(USERS, invitation_code),
    ("POST", "/v1/shares/{share_id}/leave"): Route(
        USERS, lambda w, c: {"path": {"share_id": w.share_of(c)}}
    ),
    ("GET", "/v1/webhooks"): Route(USERS),
    ("POST", "/v1/webhooks"): Route(USERS, lambda w, c: {"json": {"url": HOOK}}),
    ("DELETE", "/v1/webhooks/{webhook_id}"): Route(
        USERS, lambda w, c: {"path": {"webhook_id": w.own(c, "/v1/webhooks", {"url": HOOK})}}
    ),
    ("POST", "/v1/webhooks/{webhook_id}/rotate-secret"): Route(
        USERS, lambda w, c: {"path": {"webhook_id": w.own(c, "/v1/webhooks", {"url": HOOK})}}
    ),
    ("GET", "/v1/push-tokens"): Route(USERS),
    ("POST", "/v1/push-tokens"): Route(USERS, lambda w, c: {"json": push_token()}),
    ("DELETE", "/v1/push-tokens/{token_id}"): Route(
        USERS, lambda w, c: {"path": {"token_id": w.own(c, "/v1/push-tokens", push_token())}}
    ),
    ("GET", "/v1/me/audit"): Route(USERS),
    ("GET", "/v1/me/export"): Route(USERS),
    ("GET", "/v1/alerts"): Route(USERS),
    ("GET", "/v1/stream/sse"): Route(USERS, lambda w, c: {"stream": True}),
    # a profile's data
    ("GET", P): Route(ANY_RELATION),
    ("POST", "/v1/devices"): Route(
        MANAGE,
        lambda w, c: {
            "json": {"kind": "glucose", "serial": uuid.uuid4().hex[:12], "profile_id": w.profile}
        },
    ),
    ("GET", D): Route(READINGS),
    ("GET", f"{D}/readings"): Route(READINGS),
    ("GET", f"{D}/latest"): Route(READINGS),
    ("POST", f"{D}/readings"): Route(MANAGE | {DEVICE}, lambda w, c: reading(w)),
    ("POST", f"{D}/upload-token"): Route(
        MANAGE, lambda w, c: {"path": {"device_id": w.fresh_device()["id"]}}
    ),
    ("GET", f"{P}/events"): Route(READINGS),
    ("POST", f"{P}/events"): Route(MANAGE, lambda w, c: note()),
    ("GET", f"{P}/events/{{event_id}}"): Route(READINGS),
    ("PUT", f"{P}/events/{{event_id}}"): Route(MANAGE, lambda w, c: note()),
    ("DELETE", f"{P}/events/{{event_id}}"): Route(
        MANAGE,
        lambda w, c: {
            "path": {"event_id": w.owner_post(f"/v1/profiles/{w.profile}/events", **note())["id"]}
        },
    ),
    ("GET", f"{P}/chart"): Route(READINGS),
    ("GET", f"{P}/stats"): Route(READINGS),
    ("GET", f"{P}/report"): Route(READINGS, lambda w, c: {"params": {"format": "json"}}),
    ("POST", f"{P}/report-links"): Route(MANAGE, lambda w, c: {"json": {"days": 7}}),
    ("GET", f"{P}/report-links"): Route(MANAGE),
    ("DELETE", f"{P}/report-links/{{link_id}}"): Route(MANAGE, report_link_of_owner),
    ("GET", f"{P}/report-links/{{link_id}}/accesses"): Route(MANAGE, report_link_of_owner),
    ("GET", f"{P}/notification-preferences"): Route(ALERTS),
    ("PUT", f"{P}/notification-preferences"): Route(
        ALERTS, lambda w, c: {"json": {"channels": ["stream"]}}
    ),
    ("GET", f"{P}/alert-settings"): Route(READINGS | ALERTS),
    ("PUT", f"{P}/alert-settings"): Route(
        MANAGE, lambda w, c: {"json": {"glucose": [{"kind": "high", "threshold": 250}]}}
    ),
    ("GET", "/v1/alerts/{alert_id}"): Route(ALERTS),
    ("POST", "/v1/alerts/{alert_id}/ack"): Route(ALERTS),
    ("POST", "/v1/alerts/{alert_id}/snooze"): Route(ALERTS, lambda w, c: {"json": {"minutes": 5}}),
    # sharing: the profile's manager only, whatever a follower's scopes
    ("POST", f"{P}/shares"): Route(
        MANAGER, lambda w, c: {"json": {"email": "invitee@example.com", "scopes": ["readings"]}}
    ),
    ("GET", f"{P}/shares"): Route(MANAGER),
    ("DELETE", f"{P}/shares/{{share_id}}"): Route(
        MANAGER,
        lambda w, c: {"path": {"share_id": invite(w.accounts[OWNER], w.profile, ["alerts"])["id"]}},
    ),
    # interop: Nightscout site, history import and export
    ("PUT", f"{P}/nightscout"): Route(MANAGE, lambda w, c: {"json": {}}),
    ("DELETE", f"{P}/nightscout"): Route(MANAGE, nightscout_on),
    ("POST", f"{P}/nightscout/tokens"): Route(
        MANAGE, lambda w, c: {**nightscout_on(w, c), "json": {"name": "matrix"}}
    ),
    ("GET", f"{P}/nightscout/tokens"): Route(MANAGE),
    ("DELETE", f"{P}/nightscout/tokens/{{token_id}}"): Route(MANAGE, nightscout_token_of_owner),
    ("POST", f"{D}/import"): Route(MANAGE, history_file),
    ("GET", f"{D}/imports/{{import_id}}"): Route(MANAGE, import_of_owner),
    ("GET", f"{D}/export/openmhealth"): Route(READINGS),
    ("GET", "/fhir/r4/metadata"): Route(EVERYONE),
    ("GET", "/fhir/r4/Patient/{profile_id}"): Route(READINGS),
    ("GET", "/fhir/r4/Device/{device_id}"): Route(READINGS),
    ("GET", "/fhir/r4/Observation"): Route(
        READINGS, lambda w, c: {"params": {"patient": w.profile}}
    ),
    ("GET", "/fhir/r4/DiagnosticReport"): Route(
        READINGS, lambda w, c: {"params": {"patient": f"Patient/{w.profile}"}}
    ),
    ("POST", "/fhir/r4/$submit-cgm-bundle"): Route(MANAGE, fhir_submission),
    # platform operators
    ("GET", "/v1/admin/users"): Route(ADMINS, denied_user=403),
    ("GET", "/v1/admin/users/{user_id}"): Route(ADMINS, denied_user=403),
    ("POST", "/v1/admin/users/{user_id}/disable"): Route(
        ADMINS, lambda w, c: {"path": {"user_id": w.bystander_id()}}, denied_user=403
    ),
    ("POST", "/v1/admin/users/{user_id}/enable"): Route(
        ADMINS, lambda w, c: {"path": {"user_id": w.bystander_id()}}, denied_user=403
    ),
    ("GET", "/v1/admin/profiles"): Route(ADMINS, denied_user=403),
    ("GET", "/v1/admin/devices"): Route(ADMINS, denied_user=403),
    ("POST", "/v1/admin/devices/{device_id}/move"): Route(
        ADMINS,
        lambda w, c: {
            "path": {"device_id": w.fresh_device()["id"]},
            "json": {"profile_id": w.dependent},
        },
        denied_user=403,
    ),
    ("GET", "/v1/admin/audit"): Route(ADMINS, denied_user=403),
    ("GET", "/v1/admin/alert-latency"): Route(ADMINS, denied_user=403),
    # last: deletes each caller's own account
    ("DELETE", "/v1/me"): Route(
        USERS, lambda w, c: {"json": {"password": w.password(c), "confirm": "DELETE"}}
    ),
}


def test_every_route_in_the_openapi_document_has_a_matrix_entry() -> None:
    documented = {
        (method.upper(), path)
        for path, methods in openapi_document()["paths"].items()
        for method in methods
    }
    missing = sorted(documented - MATRIX.keys())
    assert not missing, f"routes without an authorisation matrix entry: {missing}"
    stale = sorted(MATRIX.keys() - documented)
    assert not stale, f"matrix entries for routes that no longer exist: {stale}"


def make_world(client: httpx.Client, db) -> World:
    owner = sign_up(client)
    profile = self_profile(owner)
    device = owner.device("glucose")
    start = minutes_ago(60)
    r = owner.upload(
        device["id"],
        [{"ts": (start + timedelta(minutes=5 * i)).isoformat(), "value": 120.0} for i in range(4)],
    )
    assert r.status_code == 200, r.text
    # a high alert (default threshold 250 mg/dL) on another device of the profile
    alarm = owner.device("glucose")
    for i in range(3):
        ts = (minutes_ago(12) + timedelta(minutes=i)).isoformat()
        assert owner.upload(alarm["id"], [{"ts": ts, "value": 280.0}]).status_code == 200
    fired = client.get("/v1/alerts", params={"profile_id": profile}, headers=owner.headers)
    (alert,) = [a for a in fired.json() if a["rule"] == "high"]

    accounts = {OWNER: owner}
    accounts[READER], _ = follow(owner, profile, ["readings"])
    accounts[WATCHER], _ = follow(owner, profile, ["alerts"])
    accounts[CARER], _ = follow(owner, profile, ["manage"])
    accounts[REVOKED], ended = follow(owner, profile, ["readings", "alerts", "manage"])
    r = client.delete(f"/v1/profiles/{profile}/shares/{ended['id']}", headers=owner.headers)
    assert r.status_code == 200, r.text
    accounts[STRANGER] = sign_up(client)
    accounts[ADMIN] = sign_up(client)
    db.execute("UPDATE users SET is_admin = true WHERE id = %s", (user_id(accounts[ADMIN]),))

    headers = {name: a.headers for name, a in accounts.items()}
    headers[ANON] = {}
    headers[DEVICE] = {"Authorization": f"Bearer {device['upload_token']}"}
    event = client.post(f"/v1/profiles/{profile}/events", headers=owner.headers, **note())
    link = client.post(
        f"/v1/profiles/{profile}/report-links", json={"days": 7}, headers=owner.headers
    )
    dependent = client.post("/v1/profiles", json={"name": "Dep"}, headers=owner.headers)
    inviter = sign_up(client)
    theirs = client.post("/v1/profiles", json={"name": "Theirs"}, headers=inviter.headers)
    for r in (event, link, dependent, theirs):
        assert r.status_code == 201, r.text
    return World(
        client=client,
        accounts=accounts,
        headers=headers,
        profile=profile,
        device=device,
        alert=alert["id"],
        event=event.json()["id"],
        report_token=link.json()["token"],
        dependent=dependent.json()["id"],
        login=sign_up(client),
        inviter=inviter,
        dependent_of_inviter=theirs.json()["id"],
    )


def url_for(w: World, template: str, spec: dict) -> str:
    """The route's URL for a built request (whose ``path`` entries it pops)."""
    path = {
        "profile_id": w.profile,
        "device_id": w.device["id"],
        "event_id": w.event,
        "alert_id": w.alert,
        "token": w.report_token,
        "user_id": user_id(w.accounts[STRANGER]),
        **spec.pop("path", {}),
    }
    return template.format(**path)


def send(w: World, method: str, template: str, caller: str, route: Route) -> int:
    spec = route.build(w, caller)
    url = url_for(w, template, spec)
    headers = w.headers[caller]
    if spec.pop("stream", False):
        with w.client.stream(method, url, headers=headers, **spec) as r:
            return r.status_code
    return w.client.request(method, url, headers=headers, **spec).status_code


def denial(route: Route, caller: str) -> int:
    if caller in (ANON, DEVICE):
        return 401
    if route.denied_user is not None:
        return route.denied_user
    return 403 if caller in FOLLOWERS else 404


def test_every_route_allows_exactly_its_callers(client: httpx.Client, db) -> None:
    w = make_world(client, db)
    documented = openapi_document()["paths"]
    served = client.get("/openapi.json").json()["paths"]
    assert served.keys() == documented.keys()
    wrong = []
    for (method, template), route in MATRIX.items():
        for caller in CALLERS:
            status = send(w, method, template, caller, route)
            if caller in route.allowed:
                good = status in route.ok
                expected = "/".join(map(str, sorted(route.ok)))
            else:
                good = status == denial(route, caller)
                expected = str(denial(route, caller))
            if not good:
                wrong.append(f"{method} {template} as {caller}: {status}, expected {expected}")
    assert not wrong, "\n".join(wrong)
