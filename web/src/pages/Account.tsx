// My account: units and clock, notification preferences, who viewed my data, export and
// deletion.
import { useEffect, useState, type FormEvent } from "react";
import { ApiError, download, get, send, signOut, type Schemas } from "../api/client";
import { auditColumns } from "../components/auditColumns";
import { Field, FormError, Select } from "../components/Field";
import { QuietPeriods } from "../components/QuietPeriods";
import { Table } from "../components/Table";
import { RULES, ruleName, toggleRule } from "../lib/rules";
import { formatDateTime, type Clock } from "../lib/time";
import type { GlucoseUnit } from "../lib/units";
import { fieldErrors, type FieldErrors } from "../lib/validation";
import { useApp } from "../state";

const CHANNELS = ["stream", "push", "email", "webhook"] as const;
const URGENT = new Set(["urgent_low", "urgent_low_soon"]); // always come through
/** The time zones this browser knows (the API answers for one it does not). */
const ZONES: string[] = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : ["UTC"];

export function AccountPage() {
  const { prefs, setPrefs, email, profile } = useApp();
  return (
    <>
      <h1>Account</h1>
      <p>Signed in as {email}.</p>
      <section aria-labelledby="display-title">
        <h2 id="display-title">Display</h2>
        <div className="card">
          <Select label="Glucose unit" value={prefs.unit} onChange={(e) => setPrefs({ ...prefs, unit: e.target.value as GlucoseUnit })}>
            <option value="mg/dL">mg/dL</option>
            <option value="mmol/L">mmol/L</option>
          </Select>
          <Select label="Clock" value={prefs.clock} onChange={(e) => setPrefs({ ...prefs, clock: e.target.value as Clock })}>
            <option value="auto">As my language does</option>
            <option value="24h">24 hours</option>
            <option value="12h">12 hours (AM/PM)</option>
          </Select>
        </div>
      </section>
      {profile && <NotificationPrefs key={profile.id} profileId={profile.id} name={profile.name} />}
      <AuditLog />
      <Privacy />
    </>
  );
}

function NotificationPrefs({ profileId, name }: { profileId: string; name: string }) {
  const [prefs, setPrefs] = useState<Schemas["PrefsOut"] | null>(null);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [saved, setSaved] = useState("");
  useEffect(() => {
    get<Schemas["PrefsOut"]>(`/v1/profiles/${profileId}/notification-preferences`).then(setPrefs).catch(() => setPrefs(null));
  }, [profileId]);
  if (!prefs) return null;
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    try {
      setPrefs(
        await send<Schemas["PrefsOut"]>("PUT", `/v1/profiles/${profileId}/notification-preferences`, {
          rules: prefs.rules,
          channels: prefs.channels,
          quiet: prefs.quiet,
          timezone: prefs.timezone,
          escalation_only: prefs.escalation_only,
        }),
      );
      setErrors({});
      setSaved("Notification preferences saved.");
    } catch (err) {
      setSaved("");
      setErrors(fieldErrors(err instanceof ApiError ? err.detail : String(err)));
    }
  };
  return (
    <section aria-labelledby="notif-title">
      <h2 id="notif-title">How I am told about {name}'s alerts</h2>
      <form onSubmit={submit} className="card">
        <fieldset>
          <legend>Channels</legend>
          {CHANNELS.map((c) => (
            <Field
              key={c}
              label={c === "stream" ? "This app (live)" : c === "push" ? "Phone push" : c === "email" ? "Email" : "Webhook"}
              type="checkbox"
              checked={prefs.channels.includes(c)}
              onChange={(e) =>
                setPrefs({ ...prefs, channels: e.target.checked ? [...prefs.channels, c] : prefs.channels.filter((x: string) => x !== c) })
              }
            />
          ))}
          {errors.channels && <span className="field-error">{errors.channels}</span>}
        </fieldset>
        <fieldset>
          <legend>Alerts I am told about</legend>
          <Field
            label="All alerts"
            type="checkbox"
            checked={prefs.rules === null}
            onChange={(e) => setPrefs({ ...prefs, rules: e.target.checked ? null : RULES.filter((r) => URGENT.has(r)) })}
          />
          {prefs.rules !== null &&
            RULES.map((r) => (
              <Field
                key={r}
                label={URGENT.has(r) ? `${ruleName(r)} (always)` : ruleName(r)}
                type="checkbox"
                checked={URGENT.has(r) || prefs.rules!.includes(r)}
                disabled={URGENT.has(r)}
                onChange={(e) => setPrefs({ ...prefs, rules: toggleRule(prefs.rules ?? null, r, e.target.checked) })}
              />
            ))}
          {errors.rules && <span className="field-error">{errors.rules}</span>}
        </fieldset>
        <fieldset>
          <legend>My quiet hours (urgent alerts still come)</legend>
          <QuietPeriods name="My" periods={prefs.quiet} onChange={(quiet) => setPrefs({ ...prefs, quiet })} errors={errors} errorKey="quiet" />
          <Select
            label="Time zone of my quiet hours"
            value={prefs.timezone ?? ""}
            onChange={(e) => setPrefs({ ...prefs, timezone: e.target.value || null })}
            error={errors.timezone}
          >
            <option value="">The profile's</option>
            {(prefs.timezone && !ZONES.includes(prefs.timezone) ? [prefs.timezone, ...ZONES] : ZONES).map((z) => (
              <option key={z} value={z}>
                {z}
              </option>
            ))}
          </Select>
        </fieldset>
        <Field
          label="Only urgent alerts nobody acknowledged in time"
          type="checkbox"
          checked={prefs.escalation_only}
          onChange={(e) => setPrefs({ ...prefs, escalation_only: e.target.checked })}
          error={errors.escalation_only}
        />
        <FormError message={errors[""]} />
        {saved && <p role="status">{saved}</p>}
        <button type="submit">Save notification preferences</button>
      </form>
    </section>
  );
}

function AuditLog() {
  const { prefs } = useApp();
  const [page, setPage] = useState<Schemas["AuditPage"] | null>(null);
  const audit = auditColumns(prefs.clock);
  useEffect(() => {
    get<Schemas["AuditPage"]>("/v1/me/audit?limit=50").then(setPage).catch(() => setPage(null));
  }, []);
  return (
    <section aria-labelledby="audit-title">
      <h2 id="audit-title">Who viewed my data</h2>
      {!page || page.items.length === 0 ? (
        <p>Nobody yet.</p>
      ) : (
        <Table rows={page.items} rowKey={(a) => String(a.id)} columns={[audit.when, audit.who, audit.what]} />
      )}
    </section>
  );
}

function Privacy() {
  const [errors, setErrors] = useState<FieldErrors>({});
  const remove = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    try {
      await send("DELETE", "/v1/me", { password: f.get("password"), confirm: f.get("confirm") });
      await signOut();
    } catch (err) {
      setErrors(fieldErrors(err instanceof ApiError ? err.detail : String(err)));
    }
  };
  return (
    <section aria-labelledby="privacy-title">
      <h2 id="privacy-title">My data</h2>
      <button type="button" onClick={() => download("/v1/me/export", "vigil-export.zip").catch((err) => setErrors({ "": String(err.message ?? err) }))}>
        Export all my data
      </button>
      <form onSubmit={remove} className="card danger" aria-label="Delete my account">
        <p>Deleting your account deletes its profiles, devices and readings; followers lose access at once.</p>
        <Field label="Password" name="password" type="password" required autoComplete="current-password" error={errors.password} />
        <Field label='Type "DELETE" to confirm' name="confirm" required error={errors.confirm} />
        <FormError message={errors[""]} />
        <button type="submit">Delete my account</button>
      </form>
    </section>
  );
}
