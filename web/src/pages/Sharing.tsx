// Sharing: invite followers with scopes, see and revoke them; accept an invitation; the
// profiles I follow (leave them).
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { ApiError, get, send, type Schemas } from "../api/client";
import { Field, FormError } from "../components/Field";
import { formatDateTime } from "../lib/time";
import { fieldErrors, type FieldErrors } from "../lib/validation";
import { useApp } from "../state";

type Share = Schemas["ShareOut"];
const SCOPES = [
  ["readings", "See values, history, statistics and reports"],
  ["alerts", "Receive alerts"],
  ["manage", "Manage limits and devices"],
] as const;

export function SharingPage() {
  const { profiles } = useApp();
  const managed = profiles.filter((p) => p.role === "manager");
  return (
    <>
      <h1>Sharing</h1>
      {managed.map((p) => (
        <ProfileShares key={p.id} profileId={p.id} name={p.name} />
      ))}
      <AcceptInvitation />
      <Following />
    </>
  );
}

function ProfileShares({ profileId, name }: { profileId: string; name: string }) {
  const { prefs } = useApp();
  const [shares, setShares] = useState<Share[]>([]);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [code, setCode] = useState("");
  const load = useCallback(async () => setShares(await get<Share[]>(`/v1/profiles/${profileId}/shares`)), [profileId]);
  useEffect(() => {
    load().catch(() => undefined);
  }, [load]);

  const invite = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    try {
      const made = await send<Schemas["InvitationCreated"]>("POST", `/v1/profiles/${profileId}/shares`, {
        email: f.get("email"),
        scopes: f.getAll("scopes"),
      });
      setCode(`Invitation sent to ${made.invited_email}. Their code: ${made.code}`);
      setErrors({});
      form.reset();
      await load();
    } catch (err) {
      setErrors(fieldErrors(err instanceof ApiError ? err.detail : String(err)));
    }
  };
  const visible = shares.filter((s) => s.state === "active" || s.state === "pending");
  return (
    <section aria-labelledby={`share-${profileId}`}>
      <h2 id={`share-${profileId}`}>Followers of {name}</h2>
      <form onSubmit={invite} className="card" aria-label={`Invite a follower of ${name}`}>
        <Field label="Email" name="email" type="email" required error={errors.email} />
        <fieldset>
          <legend>Scopes</legend>
          {SCOPES.map(([s, label]) => (
            <Field key={s} label={label} name="scopes" value={s} type="checkbox" defaultChecked={s !== "manage"} />
          ))}
          {errors.scopes && <span className="field-error">{errors.scopes}</span>}
        </fieldset>
        <FormError message={errors[""]} />
        <button type="submit">Invite</button>
        {code && <p role="status">{code}</p>}
      </form>
      {visible.length === 0 ? (
        <p>No followers or open invitations.</p>
      ) : (
        <ul className="shares">
          {visible.map((s) => {
            const who = s.follower_name ? `${s.follower_name} (${s.follower_email})` : s.invited_email;
            return (
              <li key={s.id}>
                <span>
                  {who}: {s.scopes.join(", ")} — {s.state === "pending" ? `invited, expires ${formatDateTime(new Date(s.expires_at), prefs.clock)}` : "following"}
                </span>
                <button
                  type="button"
                  aria-label={`${s.state === "pending" ? "Withdraw the invitation of" : "Revoke"} ${who}`}
                  onClick={async () => {
                    await send("DELETE", `/v1/profiles/${profileId}/shares/${s.id}`);
                    await load();
                  }}
                >
                  {s.state === "pending" ? "Withdraw" : "Revoke"}
                </button>
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}

function AcceptInvitation() {
  const { reloadProfiles } = useApp();
  const [errors, setErrors] = useState<FieldErrors>({});
  const [done, setDone] = useState("");
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const code = String(new FormData(form).get("code")).trim();
    try {
      const share = await send<Share>("POST", "/v1/shares/accept", { code });
      setDone(`You now follow ${share.profile_name}.`);
      setErrors({});
      form.reset();
      await reloadProfiles();
    } catch (err) {
      setDone("");
      setErrors(fieldErrors(err instanceof ApiError ? err.detail : String(err)));
    }
  };
  return (
    <section aria-labelledby="accept-title">
      <h2 id="accept-title">Accept an invitation</h2>
      <form onSubmit={submit} className="card">
        <Field label="Invitation code" name="code" required autoComplete="off" error={errors.code} />
        <FormError message={errors[""]} />
        <button type="submit">Accept</button>
        {done && <p role="status">{done}</p>}
      </form>
    </section>
  );
}

function Following() {
  const { reloadProfiles } = useApp();
  const [shares, setShares] = useState<Share[]>([]);
  const load = useCallback(async () => setShares(await get<Share[]>("/v1/shares/following")), []);
  useEffect(() => {
    load().catch(() => undefined);
  }, [load]);
  return (
    <section aria-labelledby="following-title">
      <h2 id="following-title">Profiles I follow</h2>
      {shares.length === 0 ? (
        <p>You follow no profile.</p>
      ) : (
        <ul className="shares">
          {shares.map((s) => (
            <li key={s.id}>
              <span>
                {s.profile_name}: {s.scopes.join(", ")}
              </span>
              <button
                type="button"
                aria-label={`Stop following ${s.profile_name}`}
                onClick={async () => {
                  await send("POST", `/v1/shares/${s.id}/leave`);
                  await load();
                  await reloadProfiles();
                }}
              >
                Leave
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
