"""Finding 10: every operation with a JSON request body, enumerated from the OpenAPI
document (as the authorisation matrix does), refuses an unknown field and a repeated key
with a 422 naming it. A new route with a body is covered without anyone remembering to."""

from __future__ import annotations

import json

from api.openapi import openapi_document
from tests.e2e.test_authorisation_matrix import (
    ADMIN,
    ANON,
    MATRIX,
    OWNER,
    Route,
    World,
    make_world,
    url_for,
)

UNKNOWN = "surely_not_a_field"


# FHIR's own operations take FHIR resources, which FHIR validates by its rules and answers
# with an OperationOutcome (tests/e2e/test_fhir.py); every Vigil body is closed.
FHIR = "/fhir/"


def json_body_operations() -> list[tuple[str, str]]:
    return sorted(
        (method.upper(), path)
        for path, methods in openapi_document()["paths"].items()
        for method, op in methods.items()
        if "application/json" in op.get("requestBody", {}).get("content", {})
        and not path.startswith(FHIR)
    )


def caller_for(route: Route) -> str:
    return next(c for c in (OWNER, ADMIN, ANON) if c in route.allowed)


def request(w: World, method: str, template: str, text: str) -> tuple[int, list]:
    """Send ``text`` as the body of the operation, as a caller it allows."""
    route = MATRIX[(method, template)]
    caller = caller_for(route)
    url = url_for(w, template, route.build(w, caller))
    headers = {**w.headers[caller], "content-type": "application/json"}
    r = w.client.request(method, url, content=text.encode(), headers=headers)
    detail = r.json().get("detail") if r.status_code == 422 else None
    return r.status_code, [item["loc"] for item in detail or [] if isinstance(item, dict)]


def valid_body(w: World, method: str, template: str) -> dict:
    route = MATRIX[(method, template)]
    body = route.build(w, caller_for(route)).get("json")
    assert isinstance(body, dict), f"{method} {template}: the matrix builds no JSON body"
    return body


def test_every_json_body_refuses_an_unknown_field_and_a_repeated_key(client, db) -> None:
    operations = json_body_operations()
    assert len(operations) >= 20  # the enumeration found the API's bodies
    w = make_world(client, db)
    wrong = []
    for method, template in operations:
        body = valid_body(w, method, template)
        status, locs = request(w, method, template, json.dumps({**body, UNKNOWN: 1}))
        if status != 422 or not any(loc[-1] == UNKNOWN for loc in locs):
            wrong.append(f"{method} {template} with an unknown field: {status} {locs}")
        pair = json.dumps({UNKNOWN: 1})[1:-1]
        rest = json.dumps(body)[1:-1]
        repeated = "{" + ", ".join(p for p in (pair, pair, rest) if p) + "}"
        status, locs = request(w, method, template, repeated)
        if status != 422 or locs != [["body", UNKNOWN]]:
            wrong.append(f"{method} {template} with a repeated key: {status} {locs}")
    assert not wrong, "\n".join(wrong)
