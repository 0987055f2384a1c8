"""The push services' credentials, apart from the notifier that uses them: settings and the
API's configuration carry them, and importing them must not import Ray (the `vigil` command
line reads its settings on every call)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class PushCredentials:
    """APNs and FCM credentials, read from the operator's key files by ``cluster``; a
    service whose fields are unset is not configured. Keys never appear in a repr."""

    apns_url: str = "https://api.push.apple.com"
    apns_key_pem: str | None = field(default=None, repr=False)  # the .p8 signing key (ES256)
    apns_key_id: str | None = None
    apns_team_id: str | None = None
    apns_topic: str | None = None  # the app's bundle id
    fcm_url: str = "https://fcm.googleapis.com"
    fcm_project_id: str | None = None
    fcm_client_email: str | None = None  # the service account
    fcm_private_key_pem: str | None = field(default=None, repr=False)
    fcm_token_url: str = "https://oauth2.googleapis.com/token"
