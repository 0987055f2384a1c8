"""Benchmark of the web app in Debian's Chromium (Playwright) against a throwaway stack.

    .venv/bin/python -m bench.web [--url URL] [--runs 5]

Each figure is printed beside a yardstick measured in the same run:

* ``dashboard_load_ms``: first load of the dashboard, signed in, cold cache (a new browser
  context each run): from navigation to the live value and the 24 h chart drawn (median of
  ``--runs``). Target < 1 s. Yardstick: loading a blank static page from the same server.
* ``dashboard_js_gzip_kb``: JavaScript the dashboard page loads, gzip as sent. Target
  < 300 KB. Yardstick: the Swagger UI bundle /docs loads.
* ``chart_3d_ms``: pressing "3 days" on a profile with 3 days of 1-minute data until the
  chart of the new window is drawn and painted (the API's bucketed points, fetched and
  drawn; median). Target < 200 ms.
  Yardstick: the same chart request alone, made with fetch() from the page.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from bench.stack import vigil_url
from tests.web.browser import chromium

PASSWORD = "benchmark passphrase 7"


def _account(url: str) -> tuple[dict, str]:
    """A new account with a glucose sensor holding 3 days of 1-minute readings."""
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=url, timeout=120) as c:
        c.post("/v1/auth/signup", json={"email": email, "password": PASSWORD, "name": "Bench"})
        tokens = c.post("/v1/auth/token", data={"username": email, "password": PASSWORD}).json()
        h = {"Authorization": f"Bearer {tokens['access_token']}"}
        made = c.post("/v1/devices", json={"kind": "glucose", "serial": email[:14]}, headers=h)
        made.raise_for_status()
        device = made.json()
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        readings = [
            {
                "ts": (end - timedelta(minutes=i)).isoformat(),
                "value": round(140 + 60 * math.sin(i / 90), 1),
            }
            for i in range(3 * 1440)
        ]
        r = c.post(f"/v1/devices/{device['id']}/readings", json={"readings": readings}, headers=h)
        r.raise_for_status()
        profile = c.get("/v1/profiles", headers=h).json()[0]["id"]
    return tokens, profile


def _signed_in_context(browser, url: str, tokens: dict):
    context = browser.new_context(base_url=url)
    state = json.dumps({k: tokens[k] for k in ("access_token", "refresh_token")})
    context.add_init_script(
        f"sessionStorage.setItem('vigil.tokens', {json.dumps(state)});"
        "sessionStorage.setItem('vigil.email', 'bench@example.com');"
    )
    return context


def _load_ms(browser, url: str, path: str, ready: str, tokens: dict | None) -> float:
    context = _signed_in_context(browser, url, tokens) if tokens else browser.new_context()
    page = context.new_page()
    started = time.perf_counter()
    page.goto(f"{url}{path}")
    page.wait_for_selector(ready, state="attached")
    elapsed = (time.perf_counter() - started) * 1000
    context.close()
    return elapsed


def _js_gzip_kb(browser, url: str, path: str, tokens: dict | None, ready: str) -> float:
    context = _signed_in_context(browser, url, tokens) if tokens else browser.new_context()
    page = context.new_page()
    sizes: list[int] = []

    def on_response(response) -> None:
        if response.request.resource_type == "script":
            sizes.append(response.request.sizes()["responseBodySize"])

    page.on("response", on_response)
    page.goto(f"{url}{path}")
    page.wait_for_selector(ready, state="attached")
    page.wait_for_load_state("networkidle")
    context.close()
    return sum(sizes) / 1024


CHART_3D = """async () => {
  const svg = () => document.querySelector('svg[aria-label^="Glucose"]');
  const before = svg().dataset.start;
  const button = [...document.querySelectorAll('button')].find(b => b.textContent === '3 days');
  const t0 = performance.now();
  button.click();
  await new Promise(resolve => {
    const check = () => (svg().dataset.start !== before && svg().dataset.points > 0)
      ? resolve() : requestAnimationFrame(check);
    check();
  });
  await new Promise(requestAnimationFrame);  // the frame is painted
  return performance.now() - t0;
}"""

FETCH_3D = """async (pid) => {
  const token = JSON.parse(sessionStorage.getItem('vigil.tokens')).access_token;
  const t0 = performance.now();
  const r = await fetch(`/v1/profiles/${pid}/chart?window=3d`,
                        {headers: {Authorization: `Bearer ${token}`}});
  await r.json();
  return performance.now() - t0;
}"""


def _chart_ms(browser, url: str, tokens: dict, profile: str) -> tuple[float, float]:
    context = _signed_in_context(browser, url, tokens)
    page = context.new_page()
    page.goto(f"{url}/")
    page.wait_for_selector('svg[aria-label^="Glucose"][data-points]:not([data-points="0"])')
    draw = page.evaluate(CHART_3D)
    page.get_by_role("button", name="24 h").click()
    page.wait_for_timeout(300)
    fetch = page.evaluate(FETCH_3D, profile)
    context.close()
    return draw, fetch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running Vigil; default: a throwaway local stack")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with vigil_url(args.url) as url, chromium() as browser:
        tokens, profile = _account(url)
        load_start = os.getloadavg()[0]
        ready = 'svg[aria-label^="Glucose"][data-points]:not([data-points="0"])'
        _load_ms(browser, url, "/", ready, tokens)  # warm the server, not the browser
        loads = [_load_ms(browser, url, "/", ready, tokens) for _ in range(args.runs)]
        blanks = [_load_ms(browser, url, "/blank.html", "body", None) for _ in range(args.runs)]
        js = _js_gzip_kb(browser, url, "/", tokens, ready)
        docs_js = _js_gzip_kb(browser, url, "/docs", None, ".swagger-ui .info")
        charts = [_chart_ms(browser, url, tokens, profile) for _ in range(args.runs)]
        load_end = os.getloadavg()[0]
    draw = statistics.median(c[0] for c in charts)
    fetch = statistics.median(c[1] for c in charts)
    print(f"load_average_1min: {load_start:.1f} -> {load_end:.1f}  (the machine's other work)")
    print(f"blank_page_load_ms: {statistics.median(blanks):.0f}  (yardstick)")
    print(f"dashboard_load_ms: {statistics.median(loads):.0f}  (max {max(loads):.0f})")
    print(f"docs_js_gzip_kb: {docs_js:.1f}  (yardstick: Swagger UI at /docs)")
    print(f"dashboard_js_gzip_kb: {js:.1f}")
    print(f"chart_3d_fetch_ms: {fetch:.0f}  (yardstick: the chart request alone)")
    print(f"chart_3d_ms: {draw:.0f}  (max {max(c[0] for c in charts):.0f})")


if __name__ == "__main__":
    main()
