"""The web app in a real browser against the running stack: sign in, the live value, the
chart, events, sharing, alerts, the admin console, and an accessibility pass (axe-core)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, Response, expect

from tests.helpers import Account, minutes_ago, self_profile, series, sign_up
from tests.web.browser import chromium, new_context, open_page, serious_violations, sign_in

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]
SHOTS = ROOT / "docs" / "screenshots"
SAVE_SHOTS = bool(os.environ.get("VIGIL_SCREENSHOTS"))  # set to refresh docs/screenshots


@pytest.fixture(scope="module")
def browser(stack) -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def owner(client: httpx.Client) -> Account:
    return sign_up(client)


def open_signed_in(browser: Browser, stack, account: Account, **options) -> Page:
    page = open_page(new_context(browser, stack.url, **options))
    sign_in(page, account.email, account.password)
    expect(page.get_by_role("navigation", name="Pages")).to_be_visible()
    return page


def make_admin(database_url: str, email: str, password: str) -> None:
    """`vigil admin create` (in its own process: Playwright's loop runs in this thread)."""
    args = ["admin", "create", "--email", email, "--name", "Operator", "--password", password]
    made = subprocess.run(
        [sys.executable, "-m", "cluster.cli", *args],
        env={**os.environ, "VIGIL_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stdout + made.stderr


def shot(page: Page, name: str) -> None:
    if SAVE_SHOTS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_live_value_chart_windows_and_a_meal(browser: Browser, stack, owner: Account) -> None:
    device = owner.device("glucose")
    start = minutes_ago(60)
    uploaded = series(start, 12, 300, 100, 0.2)  # 100 … 111 mg/dL, every 5 min
    assert owner.upload(device["id"], uploaded).status_code == 200
    page = open_signed_in(browser, stack, owner)
    live = page.get_by_role("status", name="Current value")
    expect(live).to_contain_text("111 mg/dL")
    expect(live).to_contain_text(re.compile("rising|steady"))

    # A new reading reaches the page over the stream within 2 s, without reloading.
    page.wait_for_timeout(500)  # the stream is subscribed
    sent = time.monotonic()
    latest = {"ts": minutes_ago(0).isoformat(), "value": 187}
    assert owner.upload(device["id"], [latest]).status_code == 200
    expect(live).to_contain_text("187 mg/dL", timeout=2000)
    assert time.monotonic() - sent < 2.0

    # The chart shows the uploaded points in each window (one per bucket), hover shows one.
    pid = self_profile(owner)
    chart = page.get_by_role("img", name=re.compile("^Glucose"))
    for window, label in (("12h", "12 h"), ("24h", "24 h"), ("3d", "3 days")):
        page.get_by_role("button", name=label, exact=True).click()
        expect(page.get_by_role("button", name=label, exact=True)).to_have_attribute(
            "aria-pressed", "true"
        )
        api = owner.client.get(
            f"/v1/profiles/{pid}/chart", params={"window": window}, headers=owner.headers
        ).json()
        (s,) = api["series"]
        buckets = {
            int(datetime.fromisoformat(u["ts"]).timestamp()) // api["bucket_s"]
            for u in [*uploaded, latest]
        }
        assert len(s["ts"]) == len(buckets)
        expect(chart).to_have_attribute("data-points", str(len(buckets)))
        expect(chart).to_have_attribute("aria-label", re.compile("highest 187 mg/dL"))
    box = chart.bounding_box()
    page.mouse.move(box["x"] + box["width"] - 20, box["y"] + box["height"] / 2)
    expect(page.locator(".readout")).to_contain_text("mg/dL")
    shot(page, "dashboard")

    # Add a meal: it is stored and drawn on the chart.
    page.get_by_role("button", name="Add event").click()
    page.get_by_label("Carbohydrates (g)").fill("45")
    page.get_by_label("Description").fill("porridge")
    page.get_by_role("button", name="Add", exact=True).click()
    meal = page.locator('svg [data-event-kind="meal"]')
    expect(meal).to_have_count(1)
    expect(meal.locator("title")).to_contain_text("Meal 45 g carbs (porridge)")
    events = owner.client.get(f"/v1/profiles/{pid}/events", headers=owner.headers).json()
    assert [(e["kind"], e["details"]["carbs_g"]) for e in events] == [("meal", 45)]
    shot(page, "chart")
    assert page.csp_errors == []


def test_a_follower_sees_the_profile_until_revoked(
    browser: Browser, stack, owner: Account, client: httpx.Client
) -> None:
    follower = sign_up(client)
    device = owner.device("glucose")
    assert owner.upload(device["id"], [{"ts": minutes_ago(1).isoformat(), "value": 142}]).is_success
    page = open_signed_in(browser, stack, owner)
    page.get_by_role("link", name="Sharing").click()
    page.get_by_label("Email").fill(follower.email)
    page.get_by_role("button", name="Invite").click()
    notice = page.get_by_role("status").filter(has_text="Their code")
    expect(notice).to_be_visible()
    code = notice.inner_text().rsplit(": ", 1)[1].strip()

    other = open_signed_in(browser, stack, follower)
    other.get_by_role("link", name="Sharing").click()
    other.get_by_label("Invitation code").fill(code)
    other.get_by_role("button", name="Accept").click()
    expect(other.get_by_role("status").filter(has_text="You now follow")).to_be_visible()
    picker = other.get_by_role("combobox", name="Profile", exact=True)
    followed = picker.locator("option", has_text="(following)")
    expect(followed).to_have_count(1)
    picker.select_option(followed.get_attribute("value"))
    other.get_by_role("link", name="Dashboard").click()
    expect(other.get_by_role("status", name="Current value")).to_contain_text("142 mg/dL")
    shot(page, "sharing")

    page.reload()  # the invitation was accepted meanwhile: now a follower to revoke
    page.get_by_role("button", name=re.compile(f"^Revoke .*{re.escape(follower.email)}")).click()
    expect(followed).to_have_count(0, timeout=3000)  # the stream said `revoked`
    # The page falls back to the follower's own profile: the owner's value is gone.
    expect(other.get_by_role("status", name="Current value")).not_to_contain_text("142")
    pid = self_profile(owner)
    assert client.get(f"/v1/profiles/{pid}", headers=follower.headers).status_code == 404
    assert page.csp_errors == [] and other.csp_errors == []


def test_an_alert_fires_and_is_acknowledged_from_the_page(
    browser: Browser, stack, owner: Account
) -> None:
    device = owner.device("glucose")
    page = open_signed_in(browser, stack, owner)
    page.get_by_role("link", name="Alerts").click()
    expect(page.get_by_text("No active alert.")).to_be_visible()
    page.wait_for_timeout(500)
    start = minutes_ago(5)
    for i, value in enumerate([48, 47, 46, 45]):
        ts = (start + timedelta(minutes=i)).isoformat()
        assert owner.upload(device["id"], [{"ts": ts, "value": value}]).is_success
    alert = page.get_by_role("alert").filter(has_text="Urgent low")
    expect(alert.first).to_be_visible(timeout=10_000)  # pushed over the stream
    shot(page, "alerts")
    page.get_by_role("button", name=re.compile("^Acknowledge Urgent low")).first.click()
    expect(page.get_by_role("alert").filter(has_text="Urgent low")).to_have_count(0)
    pid = self_profile(owner)
    stored = owner.client.get(
        "/v1/alerts", params={"profile_id": pid}, headers=owner.headers
    ).json()
    urgent = [a for a in stored if a["rule"] == "urgent_low"]
    assert urgent and all(a["state"] == "acknowledged" for a in urgent)
    expect(page.get_by_role("cell", name="acknowledged").first).to_be_visible()
    assert page.csp_errors == []


ADMIN_PASSWORD = "operator passphrase 42"


def open_admin_console(browser: Browser, stack, database_url: str) -> tuple[Page, str]:
    """A new admin, signed in and on the admin console: the page and the admin's email."""
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    make_admin(database_url, email, ADMIN_PASSWORD)
    page = open_page(new_context(browser, stack.url))
    sign_in(page, email, ADMIN_PASSWORD)
    page.get_by_role("link", name="Admin").click()
    return page, email


def test_the_admin_disables_a_user_who_then_cannot_sign_in(
    browser: Browser, stack, database_url: str, client: httpx.Client
) -> None:
    user = sign_up(client)
    page, _ = open_admin_console(browser, stack, database_url)
    page.get_by_label("Search users by email or name").fill(user.email)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name=f"Disable {user.email}").click()
    expect(page.get_by_role("button", name=f"Enable {user.email}")).to_be_visible()
    shot(page, "admin")
    # The search stays in memory: not in the URL (history), not in localStorage.
    assert user.email not in unquote(page.url)
    assert user.email not in page.evaluate("JSON.stringify(localStorage)")
    r = client.post("/v1/auth/token", data={"username": user.email, "password": user.password})
    assert r.status_code in (401, 403), r.text

    theirs = open_page(new_context(browser, stack.url))
    sign_in(theirs, user.email, user.password)
    expect(theirs.get_by_role("alert")).to_contain_text("disabled")
    expect(theirs.get_by_role("navigation", name="Pages")).to_have_count(0)
    assert page.csp_errors == [] and theirs.csp_errors == []


def test_the_admin_moves_a_device_and_reads_every_section(
    browser: Browser, stack, database_url: str, client: httpx.Client
) -> None:
    owner, target = sign_up(client), sign_up(client)
    device = owner.device("glucose")
    serial, profile = device["serial"], self_profile(target)
    page, email = open_admin_console(browser, stack, database_url)
    sections = page.get_by_role("navigation", name="Admin sections")

    sections.get_by_role("link", name="Devices").click()
    page.get_by_label("Search devices by serial or model").fill(serial)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name=f"Move {serial} to another profile").click()
    field = page.get_by_label(f"New profile id for {serial}")
    field.fill(str(uuid.uuid4()))  # no such profile: the API's message at the field
    page.get_by_role("button", name="Move", exact=True).click()
    expect(field).to_have_accessible_description("profile not found")
    field.fill(profile)
    page.get_by_role("button", name="Move", exact=True).click()
    # The form closes once the API has answered. (Until then the action cell's name holds the
    # id typed into its field, so only the exact name is the profile column's.)
    expect(field).to_be_hidden()
    expect(page.get_by_role("cell", name=profile, exact=True)).to_be_visible()
    moved = client.get(f"/v1/devices/{device['id']}", headers=target.headers)
    assert moved.status_code == 200 and moved.json()["profile_id"] == profile
    assert client.get(f"/v1/devices/{device['id']}", headers=owner.headers).status_code == 404
    assert serious_violations(page) == [], "Devices"

    sections.get_by_role("link", name="Profiles").click()
    page.get_by_label("Search profiles by name or manager").fill(target.email)
    page.get_by_role("button", name="Search").click()
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=profile))
    expect(row.get_by_role("cell", name=target.email)).to_be_visible()
    expect(page.get_by_role("row")).to_have_count(2)  # the header and the one profile

    admin = client.post("/v1/auth/token", data={"username": email, "password": ADMIN_PASSWORD})
    headers = {"Authorization": f"Bearer {admin.json()['access_token']}"}
    sections.get_by_role("link", name="Audit log").click()
    newest = client.get("/v1/admin/audit", params={"limit": 1}, headers=headers).json()
    expect(page.get_by_role("cell", name=newest["items"][0]["profile_id"]).first).to_be_visible()
    assert serious_violations(page) == [], "Audit log"

    sections.get_by_role("link", name="Alert latency").click()
    firing = page.get_by_role("rowheader", name="Receipt to firing")
    fired = page.get_by_role("row").filter(has=firing)
    latency = client.get("/v1/admin/alert-latency", headers=headers).json()
    expect(fired.get_by_role("cell").first).to_have_text(str(latency["fired"]["count"]))

    sections.get_by_role("link", name="Health").click()
    ready = client.get("/readyz").json()
    shards = f"{ready['shards']} of {ready['shard_count']} answering"
    expect(page.get_by_role("definition").filter(has_text=shards)).to_be_visible()
    expect(page.get_by_role("rowheader")).to_have_count(ready["shard_count"])
    assert serious_violations(page) == [], "Health"
    assert page.csp_errors == []


def assert_accessible(page: Page, name: str) -> None:
    """No serious or critical axe-core violation, and no sideways scroll."""
    assert serious_violations(page) == [], name
    overflow = page.evaluate("document.documentElement.scrollWidth - innerWidth")
    assert overflow <= 0, f"{name} scrolls sideways by {overflow}px"


def test_accessibility_of_every_main_page_on_desktop_and_phone(
    browser: Browser, stack, owner: Account, database_url: str
) -> None:
    owner.device("temperature")
    device = owner.device("glucose")
    readings = series(minutes_ago(24 * 60), 288, 300, 120, 0.05)
    assert owner.upload(device["id"], readings).is_success
    make_admin(database_url, owner.email, owner.password)
    for options in ({}, {"viewport": {"width": 390, "height": 844}, "is_mobile": True}):
        page = open_page(new_context(browser, stack.url, **options))
        page.goto("/")
        assert serious_violations(page) == [], "sign-in page"
        sign_in(page, owner.email, owner.password)
        for link, ready in (
            ("Dashboard", page.get_by_role("status", name="Current value")),
            ("Statistics", page.get_by_role("heading", name="Glucose")),
            ("Alerts", page.get_by_role("heading", name="Alert settings")),
            ("Sharing", page.get_by_role("heading", name="Accept an invitation")),
            ("Account", page.get_by_role("heading", name="Who viewed my data")),
            # the users list drawn: a table on the desktop, a simple list on the phone
            ("Admin", page.get_by_role("button", name=re.compile("^(Disable|Enable) ")).first),
        ):
            page.get_by_role("link", name=link).click()
            expect(ready).to_be_visible()
            assert_accessible(page, link)
            if link == "Statistics" and not options:
                page.get_by_role("button", name="24 h", exact=True).click()
                expect(page.get_by_role("rowheader", name="Mean glucose")).to_be_visible()
                shot(page, "stats")
        # Every section of the admin console (tables on the desktop, lists on the phone).
        sections = page.get_by_role("navigation", name="Admin sections")
        for section, search, ready in (
            ("Profiles", owner.email, page.get_by_text(owner.email).first),
            ("Devices", device["serial"], page.get_by_text(device["serial"]).first),
            ("Audit log", None, page.get_by_text(re.compile("^GET /v1/")).first),
            ("Alert latency", None, page.get_by_role("rowheader", name="Receipt to firing")),
            ("Health", None, page.get_by_role("definition").first),
        ):
            sections.get_by_role("link", name=section).click()
            if search:
                # Submitted from the keyboard (Enter): in 2 of ~12 runs a pointer click on
                # "Search" kept landing on moving layout (the form, then the sections nav).
                page.get_by_role("searchbox").fill(search)
                page.get_by_role("searchbox").press("Enter")
            expect(ready).to_be_visible()
            assert_accessible(page, f"Admin: {section}")
        # Keyboard only: tab to the chart window buttons and press one.
        page.get_by_role("link", name="Dashboard").click()
        page.keyboard.press("Tab")
        for _ in range(30):
            if page.evaluate("document.activeElement.textContent") == "3 days":
                break
            page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        expect(page.get_by_role("button", name="3 days")).to_have_attribute("aria-pressed", "true")
        if options:
            shot(page, "phone")
        assert page.csp_errors == []


def test_api_docs_render_offline_under_the_csp(browser: Browser, stack) -> None:
    page = open_page(new_context(browser, stack.url))
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Vigil")
    page.goto("/redoc")
    expect(page.get_by_role("heading", name=re.compile("^Vigil")).first).to_be_visible(
        timeout=30_000
    )
    assert [u for u in requested if not u.startswith(stack.url)] == []
    assert page.csp_errors == []


def saved_with(page: Page, button: Locator, path: str) -> Response:
    """Press a form's save button and wait for the API's answer to its PUT."""
    with page.expect_response(lambda r: r.request.method == "PUT" and path in r.url) as answer:
        button.click()
    return answer.value


def test_a_rule_keeps_several_quiet_periods_with_errors_at_the_period(
    browser: Browser, stack, owner: Account
) -> None:
    page = open_signed_in(browser, stack, owner)
    page.get_by_role("link", name="Alerts").click()
    add = page.get_by_role("button", name="Add a quiet period to High", exact=True)
    add.click()
    add.focus()
    page.keyboard.press("Enter")  # keyboard only works too
    first = page.get_by_role("group", name="High quiet period 1", exact=True)
    second = page.get_by_role("group", name="High quiet period 2", exact=True)
    first.get_by_label("High quiet period 1 from", exact=True).fill("22:00")
    first.get_by_label("High quiet period 1 until", exact=True).fill("07:00")
    second.get_by_label("High quiet period 2 from", exact=True).fill("06:00")
    second.get_by_label("High quiet period 2 until", exact=True).fill("08:00")
    save = page.get_by_role("button", name="Save alert settings")
    assert saved_with(page, save, "alert-settings").status == 422
    # The API's message about the second period, at that period (and only there).
    overlap = "quiet period 1 (06:00-08:00) overlaps an earlier one"
    expect(second.locator(".field-error").first).to_have_text(overlap)
    expect(second).to_have_accessible_description(overlap)
    expect(first.locator(".field-error")).to_have_count(0)
    assert serious_violations(page) == []

    second.get_by_label("High quiet period 2 from", exact=True).fill("12:00")
    second.get_by_label("High quiet period 2 until", exact=True).fill("14:00")
    second.get_by_role("group", name="High quiet period 2 starts on").get_by_label(
        "Sun", exact=True
    ).uncheck()
    answer = saved_with(page, save, "alert-settings")
    assert answer.status == 200, answer.text()
    expect(page.get_by_role("status").filter(has_text="Alert settings saved.")).to_be_visible()
    expect(page.locator(".field-error")).to_have_count(0)

    page.reload()
    page.get_by_role("link", name="Alerts").click()
    expect(page.get_by_label("High quiet period 1 from", exact=True)).to_have_value("22:00")
    expect(page.get_by_label("High quiet period 1 until", exact=True)).to_have_value("07:00")
    expect(page.get_by_label("High quiet period 2 from", exact=True)).to_have_value("12:00")
    expect(page.get_by_label("High quiet period 2 until", exact=True)).to_have_value("14:00")
    days = page.get_by_role("group", name="High quiet period 2 starts on")
    expect(days.get_by_label("Sun", exact=True)).not_to_be_checked()
    expect(days.get_by_label("Sat", exact=True)).to_be_checked()
    stored = owner.client.get(
        f"/v1/profiles/{self_profile(owner)}/alert-settings", headers=owner.headers
    ).json()
    high = next(r for r in stored["glucose"] if r["kind"] == "high")
    assert high["quiet"] == [
        {"start": "22:00", "end": "07:00", "weekdays": [0, 1, 2, 3, 4, 5, 6]},
        {"start": "12:00", "end": "14:00", "weekdays": [0, 1, 2, 3, 4, 5]},
    ]
    # Removing one leaves the other.
    page.get_by_role("button", name="Remove High quiet period 1", exact=True).click()
    assert saved_with(page, save, "alert-settings").status == 200
    expect(page.get_by_role("status").filter(has_text="Alert settings saved.")).to_be_visible()
    expect(page.get_by_label("High quiet period 1 from", exact=True)).to_have_value("12:00")
    expect(page.get_by_label("High quiet period 2 from", exact=True)).to_have_count(0)
    assert page.csp_errors == []


def test_every_notification_preference_is_edited_and_read_back(
    browser: Browser, stack, owner: Account
) -> None:
    page = open_signed_in(browser, stack, owner)
    page.get_by_role("link", name="Account").click()
    form = page.locator("form").filter(has=page.get_by_role("button", name="Save notification"))
    form.get_by_label("Email", exact=True).uncheck()
    form.get_by_label("All alerts", exact=True).uncheck()
    expect(form.get_by_label("Urgent low (always)", exact=True)).to_be_disabled()
    form.get_by_label("Low", exact=True).check()
    form.get_by_label("High", exact=True).check()
    form.get_by_role("button", name="Add a quiet period to My", exact=True).click()
    period = form.get_by_role("group", name="My quiet period 1", exact=True)
    period.get_by_label("My quiet period 1 from", exact=True).fill("23:00")
    until = period.get_by_label("My quiet period 1 until", exact=True)
    until.fill("23:00")
    for day in ("Sat", "Sun"):
        period.get_by_role("group", name="My quiet period 1 starts on").get_by_label(
            day, exact=True
        ).uncheck()
    form.get_by_label("Time zone of my quiet hours").select_option("Europe/Paris")
    form.get_by_label("Only urgent alerts nobody acknowledged in time").check()
    save = form.get_by_role("button", name="Save notification preferences")
    assert saved_with(page, save, "notification-preferences").status == 422
    empty = "quiet period 0 (23:00-23:00) is empty"
    expect(until).to_have_attribute("aria-invalid", "true")
    expect(until).to_have_accessible_description(empty)
    assert serious_violations(page) == []
    until.fill("06:30")
    assert saved_with(page, save, "notification-preferences").status == 200
    expect(page.get_by_role("status").filter(has_text="preferences saved")).to_be_visible()

    page.reload()
    page.get_by_role("link", name="Account").click()
    form = page.locator("form").filter(has=page.get_by_role("button", name="Save notification"))
    expect(form.get_by_label("Email", exact=True)).not_to_be_checked()
    expect(form.get_by_label("Phone push", exact=True)).to_be_checked()
    expect(form.get_by_label("All alerts", exact=True)).not_to_be_checked()
    expect(form.get_by_label("Low", exact=True)).to_be_checked()
    expect(form.get_by_label("High", exact=True)).to_be_checked()
    expect(form.get_by_label("Rising fast", exact=True)).not_to_be_checked()
    expect(form.get_by_label("My quiet period 1 from", exact=True)).to_have_value("23:00")
    expect(form.get_by_label("My quiet period 1 until", exact=True)).to_have_value("06:30")
    days = form.get_by_role("group", name="My quiet period 1 starts on")
    expect(days.get_by_label("Sat", exact=True)).not_to_be_checked()
    expect(days.get_by_label("Fri", exact=True)).to_be_checked()
    expect(form.get_by_label("Time zone of my quiet hours")).to_have_value("Europe/Paris")
    expect(form.get_by_label("Only urgent alerts nobody acknowledged in time")).to_be_checked()
    stored = owner.client.get(
        f"/v1/profiles/{self_profile(owner)}/notification-preferences", headers=owner.headers
    ).json()
    assert set(stored["rules"]) == {"urgent_low", "urgent_low_soon", "low", "high"}
    assert set(stored["channels"]) == {"stream", "push", "webhook"}
    assert stored["quiet"] == [{"start": "23:00", "end": "06:30", "weekdays": [0, 1, 2, 3, 4]}]
    assert stored["timezone"] == "Europe/Paris" and stored["escalation_only"] is True
    assert page.csp_errors == []
