"""FHIR R4 per the HL7 CGM guide over HTTP: 14 days as a Bundle validated with the
`fhir.resources` models and the guide's required elements, summaries equal to /stats, and
a round trip through $submit-cgm-bundle into another profile."""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime, timedelta

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.patient import Patient

from tests.helpers import Account, self_profile, share_directly, sign_up

pytestmark = pytest.mark.slow
LOINC, UCUM = "http://loinc.org", "http://unitsofmeasure.org"
RANGES = {
    "104642-4": "below_54_pct",
    "104641-6": "from_54_below_70_pct",
    "97510-2": "in_70_180_pct",
    "104640-8": "above_180_to_250_pct",
    "104639-0": "above_250_pct",
}


def fourteen_days(end: datetime) -> list[dict]:
    """5-minute readings over 14 days, a daily wave from 48 to 278 mg/dL, with a gap."""
    start = end - timedelta(days=14)
    out = []
    for i in range(14 * 288):
        if 1000 <= i < 1100:  # a sensor change: about 8 hours without readings
            continue
        value = 160 + 112 * math.sin(2 * math.pi * i / 288) + (i % 7)
        out.append({"ts": (start + timedelta(minutes=5 * i)).isoformat(), "value": round(value)})
    return out


def ig_checks(resource: dict, profile_id: str) -> None:
    """What the CGM guide requires and structural validation alone does not check."""
    assert resource["subject"]["reference"] == f"Patient/{profile_id}"
    assert resource["status"] == "final"
    assert resource["category"][0]["coding"][0]["code"] in ("laboratory", "LAB")
    code = resource["code"]["coding"][0]
    assert code["system"] == LOINC
    if resource["resourceType"] == "DiagnosticReport":
        assert resource["presentedForm"][0]["contentType"] == "application/pdf"
        return
    quantities = [resource.get("valueQuantity")] + [
        c["valueQuantity"] for c in resource.get("component", [])
    ]
    for q in filter(None, quantities):
        assert q["system"] == UCUM and q["code"] in ("mg/dL", "%", "d")
    if code["code"] == "99504-3":
        assert resource["effectiveDateTime"].endswith("Z")
        assert resource["valueQuantity"]["code"] == "mg/dL"
    else:
        period = resource["effectivePeriod"]
        assert period["start"] < period["end"]


def fhir_get(account: Account, path: str, **params) -> dict:
    r = account.client.get(f"/fhir/r4/{path}", params=params, headers=account.headers)
    assert r.status_code == 200, r.text
    return r.json()


def by_code(bundle: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for e in bundle["entry"]:
        out.setdefault(e["resource"]["code"]["coding"][0]["code"], []).append(e["resource"])
    return out


def stats(account: Account, pid: str, end: datetime) -> dict:
    r = account.client.get(
        f"/v1/profiles/{pid}/stats",
        params={"period": "14d", "end": end.isoformat()},
        headers=account.headers,
    )
    assert r.status_code == 200, r.text
    return r.json()["glucose"]["current"]


def test_fourteen_days_as_fhir_summaries_equal_stats_and_survive_a_round_trip(
    account: Account, db
) -> None:
    pid = self_profile(account)
    end = datetime.now(UTC).replace(microsecond=0)
    device = account.device("glucose", model="Dexcom G7")
    sent = fourteen_days(end)
    assert account.upload(device["id"], sent).status_code == 200
    window = {"date": [f"ge{(end - timedelta(days=14)).isoformat()}", f"lt{end.isoformat()}"]}

    bundle = fhir_get(account, "Observation", patient=f"Patient/{pid}", **window)
    Bundle.model_validate(bundle)
    assert bundle["type"] == "searchset" and bundle["total"] == len(bundle["entry"])
    for entry in bundle["entry"]:
        ig_checks(entry["resource"], pid)
    codes = by_code(bundle)
    readings = codes["99504-3"]
    assert len(readings) == len(sent)
    assert readings[0]["valueQuantity"]["value"] == sent[0]["value"]
    assert readings[0]["device"]["reference"] == f"Device/{device['id']}"

    expected = stats(account, pid, end)
    assert codes["97507-8"][0]["valueQuantity"]["value"] == expected["mean_mgdl"]
    assert codes["97506-0"][0]["valueQuantity"]["value"] == expected["gmi_pct"]
    assert codes["104638-2"][0]["valueQuantity"]["value"] == expected["cv_pct"]
    sufficiency = codes["104637-4"][0]["valueQuantity"]["value"]
    assert sufficiency == expected["data_sufficiency_pct"] < 100
    assert codes["104636-6"][0]["valueQuantity"]["value"] == round(14 * sufficiency / 100, 2)
    panel = {
        c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"]
        for c in codes["106793-3"][0]["component"]
    }
    assert panel == {code: expected["ranges"][key] for code, key in RANGES.items()}
    assert all(v > 0 for v in panel.values())  # the wave crosses every range

    only_mean = fhir_get(account, "Observation", patient=pid, code=f"{LOINC}|97507-8", **window)
    assert [e["resource"]["code"]["coding"][0]["code"] for e in only_mean["entry"]] == ["97507-8"]

    report = fhir_get(account, "DiagnosticReport", patient=pid, **window)
    Bundle.model_validate(report)
    diagnostic = report["entry"][0]["resource"]
    ig_checks(diagnostic, pid)
    assert base64.b64decode(diagnostic["presentedForm"][0]["data"]).startswith(b"%PDF")
    listed = {f"Observation/{e['resource']['id']}" for e in report["entry"][1:]}
    assert {r["reference"] for r in diagnostic["result"]} == listed

    Patient.model_validate(fhir_get(account, f"Patient/{pid}"))
    capability = account.client.get("/fhir/r4/metadata").json()  # public, as FHIR requires
    CapabilityStatement.model_validate(capability)
    assert capability["instantiates"] == [
        "http://hl7.org/fhir/uv/cgm/CapabilityStatement/cgm-data-receiver"
    ]
    dev = fhir_get(account, f"Device/{device['id']}")
    Device.model_validate(dev)
    assert dev["patient"]["reference"] == f"Patient/{pid}"
    assert dev["deviceName"][0]["name"] == "Dexcom G7"

    # Into another profile through $submit-cgm-bundle: the same statistics; again: nothing new.
    other = account.client.post("/v1/profiles", json={"name": "Copy"}, headers=account.headers)
    other_id = other.json()["id"]
    submission = {"resourceType": "Bundle", "type": "transaction", "entry": bundle["entry"]}
    url = f"/fhir/r4/$submit-cgm-bundle?patient={other_id}"
    r = account.client.post(url, json=submission, headers=account.headers)
    assert r.status_code == 200, r.text
    counts = {x["url"]: x["valueInteger"] for x in r.json()["extension"]}
    assert counts == {"urn:vigil:accepted": len(sent), "urn:vigil:duplicates": 0}
    copied = stats(account, other_id, end)
    for key in ("readings", "mean_mgdl", "cv_pct", "gmi_pct", "data_sufficiency_pct", "ranges"):
        assert copied[key] == expected[key], key
    again = account.client.post(url, json=submission, headers=account.headers).json()
    assert {x["url"]: x["valueInteger"] for x in again["extension"]}["urn:vigil:accepted"] == 0

    # Same grants as the API: alerts-only followers and strangers see nothing.
    watcher = sign_up(account.client)
    share_directly(db, pid, account.email, watcher.email, ["alerts"])
    r = account.client.get("/fhir/r4/Observation", params={"patient": pid}, headers=watcher.headers)
    assert r.status_code == 403
    stranger = sign_up(account.client)
    r = account.client.post(url, json=submission, headers=stranger.headers)
    assert r.status_code == 404


def test_submissions_vigil_cannot_take_are_refused_naming_the_element(account: Account) -> None:
    pid = self_profile(account)
    reading = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "99504-3"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2026-11-20T08:00:00Z",
        "valueQuantity": {"value": 120, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"},
    }
    cases = [
        ({k: v for k, v in reading.items() if k != "subject"}, "entry[0].resource.subject"),
        ({**reading, "effectiveDateTime": "yesterday"}, "entry[0].resource.effectiveDateTime"),
        ({**reading, "valueQuantity": {"value": 900, "code": "mg/dL"}}, "valueQuantity.value"),
        ({**reading, "valueQuantity": {"value": 9, "code": "g/L"}}, "valueQuantity.code"),
    ]
    for resource, where in cases:
        body = {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": resource}]}
        r = account.client.post("/fhir/r4/$submit-cgm-bundle", json=body, headers=account.headers)
        assert r.status_code == 422 and where in r.json()["detail"], (where, r.text)
    r = account.client.get(
        "/fhir/r4/Observation",
        params={"patient": pid, "date": "ge2026-13-01"},
        headers=account.headers,
    )
    assert r.status_code == 422 and "date" in r.json()["detail"]
