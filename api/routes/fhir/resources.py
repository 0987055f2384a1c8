"""FHIR R4 resources of the HL7 CGM implementation guide (hl7.org/fhir/uv/cgm), built from
Vigil's records, and the readings read back out of a submitted CGM bundle. Pure functions.

Profiles: a CGM sensor reading is an Observation coded LOINC 99504-3 with a UCUM mg/dL
quantity; summaries are Observations over an ``effectivePeriod`` (mean glucose, the
times-in-ranges panel with its five components, GMI, CV, days of wear, sensor active
percentage); the summary report is a DiagnosticReport carrying the PDF.
"""

from __future__ import annotations

import base64
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from algorithms.sensors import MGDL_PER_MMOLL, SensorKind, spec_for

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
IG = "http://hl7.org/fhir/uv/cgm/StructureDefinition/"
READING = "99504-3"
MEAN = "97507-8"
TIMES_IN_RANGES = "106793-3"
GMI = "97506-0"
CV = "104638-2"
DAYS_OF_WEAR = "104636-6"
SENSOR_ACTIVE = "104637-4"
REPORT = "107931-8"
SUMMARY_CODES = (MEAN, TIMES_IN_RANGES, GMI, CV, DAYS_OF_WEAR, SENSOR_ACTIVE)
# Times-in-ranges components: LOINC code -> the /stats range it reports.
RANGE_COMPONENTS = {
    "104642-4": "below_54_pct",  # very low, < 54 mg/dL
    "104641-6": "from_54_below_70_pct",  # low, 54-69
    "97510-2": "in_70_180_pct",  # in target, 70-180
    "104640-8": "above_180_to_250_pct",  # high, 181-250
    "104639-0": "above_250_pct",  # very high, > 250
}
_NS = uuid.UUID("6f1c1f0e-9a52-4d7e-8d55-3c1e5b0f7a10")  # ids of computed resources


def instant(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _lab() -> list[dict[str, Any]]:
    return [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "laboratory",
                }
            ]
        }
    ]


def _code(code: str) -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": code}]}


def quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def patient(profile_id: uuid.UUID, name: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": str(profile_id), "name": [{"text": name}]}


def device(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Device",
        "id": str(row["id"]),
        "identifier": [{"system": "urn:vigil:device-serial", "value": row["serial"]}],
        "type": {"text": "Continuous glucose monitor" if row["kind"] == "glucose"
                 else "Body temperature patch"},
        "patient": {"reference": f"Patient/{row['profile_id']}"},
    }  # fmt: skip
    if row.get("model"):
        out["deviceName"] = [{"name": row["model"], "type": "model-name"}]
    return out


def reading(profile_id: uuid.UUID, device_id: uuid.UUID, ts: datetime, mgdl: float) -> dict:
    """A CGM sensor reading (mass per volume); its id follows from device and time."""
    when = instant(ts)
    return {
        "resourceType": "Observation",
        "id": str(uuid.uuid5(device_id, when)),
        "meta": {"profile": [IG + "cgm-sensor-reading-mass-per-volume"]},
        "status": "final",
        "category": _lab(),
        "code": _code(READING),
        "subject": {"reference": f"Patient/{profile_id}"},
        "effectiveDateTime": when,
        "valueQuantity": quantity(mgdl, "mg/dL"),
        "device": {"reference": f"Device/{device_id}"},
    }


def _summary(
    profile_id: uuid.UUID, code: str, profile: str, start: datetime, end: datetime
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": str(uuid.uuid5(_NS, f"{profile_id}/{code}/{instant(start)}/{instant(end)}")),
        "meta": {"profile": [IG + profile]},
        "status": "final",
        "category": _lab(),
        "code": _code(code),
        "subject": {"reference": f"Patient/{profile_id}"},
        "effectivePeriod": {"start": instant(start), "end": instant(end)},
    }


def summaries(
    profile_id: uuid.UUID, metrics: dict[str, Any], start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """The summary Observations of a period from /stats' current glucose metrics (the
    same numbers); a metric that is undefined (no readings) is left out."""
    days = (end - start).total_seconds() / 86_400
    sufficiency = metrics["data_sufficiency_pct"]
    values = {
        MEAN: ("cgm-summary-mean-glucose-mass-per-volume", metrics["mean_mgdl"], "mg/dL"),
        GMI: ("cgm-summary-gmi", metrics["gmi_pct"], "%"),
        CV: ("cgm-summary-coefficient-of-variation", metrics["cv_pct"], "%"),
        SENSOR_ACTIVE: ("cgm-summary-sensor-active-percentage", sufficiency, "%"),
        DAYS_OF_WEAR: (
            "cgm-summary-days-of-wear",
            None if sufficiency is None else round(days * sufficiency / 100, 2),
            "d",
        ),
    }
    out = []
    for code, (profile, value, unit) in values.items():
        if value is not None:
            obs = _summary(profile_id, code, profile, start, end)
            out.append({**obs, "valueQuantity": quantity(value, unit)})
    ranges = metrics["ranges"]
    if all(ranges[k] is not None for k in RANGE_COMPONENTS.values()):
        panel = _summary(profile_id, TIMES_IN_RANGES, "cgm-summary-times-in-ranges", start, end)
        panel["component"] = [
            {"code": _code(code), "valueQuantity": quantity(ranges[key], "%")}
            for code, key in RANGE_COMPONENTS.items()
        ]
        out.append(panel)
    return out


def report(
    profile_id: uuid.UUID, pdf: bytes, start: datetime, end: datetime, results: list[dict]
) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "id": str(uuid.uuid5(_NS, f"{profile_id}/report/{instant(start)}/{instant(end)}")),
        "meta": {"profile": [IG + "cgm-summary-pdf"]},
        "status": "final",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}
        ],
        "code": _code(REPORT),
        "subject": {"reference": f"Patient/{profile_id}"},
        "effectivePeriod": {"start": instant(start), "end": instant(end)},
        "issued": instant(datetime.now(UTC)),
        "result": [{"reference": f"Observation/{r['id']}"} for r in results],
        "presentedForm": [
            {"contentType": "application/pdf", "data": base64.b64encode(pdf).decode()}
        ],
    }


def capability_statement() -> dict[str, Any]:
    search = [{"name": n, "type": t} for n, t in
              (("patient", "reference"), ("code", "token"), ("date", "date"))]  # fmt: skip
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-30",
        "kind": "instance",
        "instantiates": ["http://hl7.org/fhir/uv/cgm/CapabilityStatement/cgm-data-receiver"],
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "security": {"description": "Vigil access token: Authorization: Bearer"},
                "resource": [
                    {"type": "Patient", "interaction": [{"code": "read"}]},
                    {"type": "Device", "interaction": [{"code": "read"}]},
                    {
                        "type": "Observation",
                        "interaction": [{"code": "search-type"}],
                        "searchParam": search,
                    },
                    {
                        "type": "DiagnosticReport",
                        "interaction": [{"code": "search-type"}],
                        "searchParam": search[::2],
                    },
                ],
                "operation": [
                    {
                        "name": "submit-cgm-bundle",
                        "definition": "http://hl7.org/fhir/uv/cgm/OperationDefinition/submit-cgm-bundle",
                    }
                ],
            }
        ],
    }


def bundle(resources: list[dict[str, Any]], base: str) -> dict[str, Any]:
    """A searchset Bundle of the resources, each with its full URL."""
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "timestamp": instant(datetime.now(UTC)),
        "entry": [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


# --- reading a submitted bundle ---------------------------------------------------------


class BundleError(ValueError):
    """A submitted bundle Vigil cannot take; ``where`` names the element."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")


@dataclass(slots=True)
class Submitted:
    subjects: set[str]  # the Patient references of the readings
    ts: list[datetime]
    mgdl: list[float]
    other: int  # entries that are not sensor readings (summaries, Patient, Device, ...)


def _has_code(resource: dict, code: str) -> bool:
    codings = (resource.get("code") or {}).get("coding") or []
    return any(isinstance(c, dict) and c.get("code") == code for c in codings)


def _reading_of(resource: dict, where: str) -> tuple[str, datetime, float]:
    subject = (resource.get("subject") or {}).get("reference")
    if not isinstance(subject, str) or not subject.startswith("Patient/"):
        raise BundleError(f"{where}.subject", "a reading needs a Patient subject")
    when = resource.get("effectiveDateTime")
    try:
        ts = datetime.fromisoformat(str(when).replace("Z", "+00:00"))
    except ValueError:
        raise BundleError(f"{where}.effectiveDateTime", f"{when!r} is not a dateTime") from None
    if ts.tzinfo is None:
        raise BundleError(f"{where}.effectiveDateTime", "needs a time zone")
    q = resource.get("valueQuantity") or {}
    value, unit = q.get("value"), q.get("code") or q.get("unit")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BundleError(f"{where}.valueQuantity.value", "must be a number")
    if unit not in ("mg/dL", "mmol/L"):
        raise BundleError(f"{where}.valueQuantity.code", f"{unit!r} is not mg/dL or mmol/L")
    mgdl = float(value) * (MGDL_PER_MMOLL if unit == "mmol/L" else 1.0)
    spec = spec_for(SensorKind.GLUCOSE)
    if not spec.min_value <= mgdl <= spec.max_value:
        raise BundleError(f"{where}.valueQuantity.value", f"{mgdl:g} mg/dL is outside the"
                          f" sensor range {spec.min_value:g}-{spec.max_value:g}")  # fmt: skip
    return subject, ts.astimezone(UTC), mgdl


def submitted_readings(body: Any, max_entries: int) -> Submitted:
    """The sensor readings of a CGM data submission: a Bundle, or a Parameters resource
    whose ``cgmData`` parameter holds the Bundle."""
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        params = body.get("parameter") or []
        found = next((p for p in params if isinstance(p, dict) and p.get("resource")), None)
        body = found["resource"] if found else None
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise BundleError("body", "expected a Bundle (or Parameters holding one)")
    entries = body.get("entry") or []
    if not isinstance(entries, list) or len(entries) > max_entries:
        raise BundleError("entry", f"must be a list of at most {max_entries} entries")
    out = Submitted(set(), [], [], 0)
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            raise BundleError(f"entry[{i}]", "has no resource")
        if resource.get("resourceType") != "Observation" or not _has_code(resource, READING):
            out.other += 1
            continue
        subject, ts, mgdl = _reading_of(resource, f"entry[{i}].resource")
        out.subjects.add(subject)
        out.ts.append(ts)
        out.mgdl.append(mgdl)
    return out
