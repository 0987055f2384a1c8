"""Finding 11a: a device an admin moves to another profile loses its upload token, so
whoever set up its uploads for the old profile cannot keep writing into the new one."""

from __future__ import annotations

from tests.e2e.test_authorisation_matrix import user_id
from tests.helpers import minutes_ago, self_profile, series, sign_up


def test_moving_a_device_revokes_its_upload_token(client, db) -> None:
    admin, old, new = sign_up(client), sign_up(client), sign_up(client)
    db.execute("UPDATE users SET is_admin = true WHERE id = %s", (user_id(admin),))
    device = old.device("glucose")
    as_device = {"Authorization": f"Bearer {device['upload_token']}"}
    url = f"/v1/devices/{device['id']}/readings"
    first = {"readings": series(minutes_ago(30), 2, 300, 110, 0)}
    assert client.post(url, json=first, headers=as_device).status_code == 200

    r = client.post(
        f"/v1/admin/devices/{device['id']}/move",
        json={"profile_id": self_profile(new)},
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    later = {"readings": series(minutes_ago(10), 2, 300, 120, 0)}
    refused = client.post(url, json=later, headers=as_device)
    assert refused.status_code == 401
    # The new profile's manager issues the device a token of their own.
    issued = client.post(f"/v1/devices/{device['id']}/upload-token", headers=new.headers)
    assert issued.status_code == 200, issued.text
    fresh = {"Authorization": f"Bearer {issued.json()['upload_token']}"}
    assert client.post(url, json=later, headers=fresh).json() == {"accepted": 2, "duplicates": 0}
