// Alerts: the active ones (acknowledge, snooze), the history, and the alert settings editor
// with the API's validation messages next to each field.
import { useCallback, useEffect, useState } from "react";
import { ApiError, get, send, type Schemas } from "../api/client";
import { Field, FormError } from "../components/Field";
import { QuietPeriods, type Quiet } from "../components/QuietPeriods";
import { useStream } from "../components/StreamContext";
import { Table } from "../components/Table";
import { formatDateTime } from "../lib/time";
import { ruleName } from "../lib/rules";
import { formatValue } from "../lib/units";
import { fieldErrors, type FieldErrors } from "../lib/validation";
import { canManage, canSeeAlerts, useApp } from "../state";

type Alert = Schemas["AlertOut"];

export function AlertsPage() {
  const { profile, prefs } = useApp();
  const pid = profile!.id;
  const [alerts, setAlerts] = useState<Alert[]>([]);
  const [error, setError] = useState("");
  const load = useCallback(async () => {
    setAlerts(await get<Alert[]>(`/v1/alerts?profile_id=${pid}&limit=100`));
  }, [pid]);
  useEffect(() => {
    load().catch((e) => setError(String(e.message ?? e)));
  }, [load]);
  useStream((m) => {
    if (m.type === "alert" && m.profile_id === pid) load().catch(() => undefined);
  });

  const act = async (path: string, body?: unknown) => {
    try {
      await send("POST", path, body);
      setError("");
      await load();
    } catch (e) {
      setError(e instanceof ApiError ? String(fieldErrors(e.detail)[""] ?? Object.values(fieldErrors(e.detail))[0]) : String(e));
    }
  };
  const unit = (a: Alert) => (a.rule.includes("fever") || a.rule === "hypothermia" ? "temperature" : "glucose");
  const describe = (a: Alert) =>
    `${ruleName(a.rule)}${a.value != null ? `: ${formatValue(unit(a), a.value, prefs.unit)}` : ""} at ${formatDateTime(new Date(a.reading_ts), prefs.clock)}`;
  const active = alerts.filter((a) => a.state === "fired");

  if (!canSeeAlerts(profile)) {
    return (
      <>
        <h1>Alerts</h1>
        <p>Your share of this profile does not include its alerts.</p>
      </>
    );
  }
  return (
    <>
      <h1>Alerts</h1>
      <FormError message={error} />
      <section aria-labelledby="active-title">
        <h2 id="active-title">Active</h2>
        {active.length === 0 && <p>No active alert.</p>}
        <ul className="alerts">
          {active.map((a) => (
            <li key={a.id} className={`alert sev-${a.severity}`}>
              <div role="alert">{describe(a)}</div>
              <div className="actions">
                <button type="button" onClick={() => act(`/v1/alerts/${a.id}/ack`)} aria-label={`Acknowledge ${describe(a)}`}>
                  Acknowledge
                </button>
                {a.rule !== "urgent_low" && (
                  <button type="button" onClick={() => act(`/v1/alerts/${a.id}/snooze`, { minutes: 30 })} aria-label={`Snooze ${describe(a)} for 30 minutes`}>
                    Snooze 30 min
                  </button>
                )}
                {a.snoozed_until && <span>Snoozed until {formatDateTime(new Date(a.snoozed_until), prefs.clock)}</span>}
              </div>
            </li>
          ))}
        </ul>
      </section>
      <section aria-labelledby="history-title">
        <h2 id="history-title">History</h2>
        {alerts.length === 0 ? (
          <p>No alerts yet.</p>
        ) : (
          <Table
            rows={alerts}
            rowKey={(a) => a.id}
            columns={[
              { header: "Alert", cell: describe },
              { header: "State", cell: (a) => a.state },
              { header: "Latency", cell: (a) => `${Math.round(a.latency_ms)} ms` },
            ]}
          />
        )}
      </section>
      <AlertSettings profileId={pid} editable={canManage(profile)} />
    </>
  );
}

type RuleOut = Schemas["RuleOut"];
/** Rules whose threshold the person sets (signal loss: its minutes; a sensor problem has none). */
const hasThreshold = (r: RuleOut) => r.kind !== "sensor_problem";

function AlertSettings({ profileId, editable }: { profileId: string; editable: boolean }) {
  const [settings, setSettings] = useState<Schemas["AlertSettingsOut"] | null>(null);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [saved, setSaved] = useState("");
  useEffect(() => {
    get<Schemas["AlertSettingsOut"]>(`/v1/profiles/${profileId}/alert-settings`).then(setSettings).catch(() => setSettings(null));
  }, [profileId]);
  if (!settings) return null;

  const update = (sensor: "glucose" | "temperature", i: number, patch: Partial<RuleOut>) => {
    const rules = settings[sensor].map((r: RuleOut, j: number) => (j === i ? { ...r, ...patch } : r));
    setSettings({ ...settings, [sensor]: rules });
  };
  const save = async () => {
    const strip = (rules: RuleOut[]) =>
      rules.map((r) => ({
        kind: r.kind,
        threshold: hasThreshold(r) ? r.threshold : null, // the API gives 0 for "none"
        enabled: r.enabled,
        realert_min: r.realert_min,
        duration_min: r.duration_min,
        quiet: r.quiet ?? [],
      }));
    try {
      const out = await send<Schemas["AlertSettingsOut"]>("PUT", `/v1/profiles/${profileId}/alert-settings`, {
        escalation_min: settings.escalation_min,
        glucose: strip(settings.glucose),
        temperature: strip(settings.temperature),
      });
      setSettings(out);
      setErrors({});
      setSaved("Alert settings saved.");
    } catch (e) {
      setSaved("");
      setErrors(fieldErrors(e instanceof ApiError ? e.detail : String(e)));
    }
  };
  const fixed = (r: RuleOut) => r.kind === "urgent_low";

  return (
    <section aria-labelledby="settings-title">
      <h2 id="settings-title">Alert settings</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          save();
        }}
      >
        <fieldset disabled={!editable}>
          <Field
            label="Escalate unacknowledged urgent alerts after (min)"
            type="number"
            value={settings.escalation_min}
            onChange={(e) => setSettings({ ...settings, escalation_min: Number(e.target.value) })}
            error={errors.escalation_min}
          />
          {(["glucose", "temperature"] as const).map((sensor) => (
            <fieldset key={sensor} className="rules">
              <legend>{sensor === "glucose" ? "Glucose rules" : "Temperature rules"}</legend>
              {settings[sensor].map((r: RuleOut, i: number) => {
                const key = (f: string) => `${sensor}.${i}.${f}`;
                const name = ruleName(r.kind);
                return (
                  <div key={r.kind} className="rule card">
                    <strong>{name}</strong>
                    <Field label={`${name} on`} type="checkbox" checked={r.enabled} disabled={fixed(r)} onChange={(e) => update(sensor, i, { enabled: e.target.checked })} error={errors[key("enabled")]} />
                    {r.kind !== "signal_loss" && hasThreshold(r) && (
                      <Field label={`${name} threshold (${r.unit})`} type="number" step="any" value={r.threshold} disabled={fixed(r)} onChange={(e) => update(sensor, i, { threshold: Number(e.target.value) })} error={errors[key("threshold")]} />
                    )}
                    <Field label={`${name}: repeat after (min)`} type="number" value={r.realert_min} onChange={(e) => update(sensor, i, { realert_min: Number(e.target.value) })} error={errors[key("realert_min")]} />
                    <Field label={`${name}: lasting at least (min)`} type="number" value={r.duration_min} onChange={(e) => update(sensor, i, { duration_min: Number(e.target.value) })} error={errors[key("duration_min")]} />
                    {r.severity !== "urgent" && (
                      <QuietPeriods
                        name={name}
                        periods={r.quiet ?? []}
                        onChange={(quiet: Quiet[]) => update(sensor, i, { quiet })}
                        errors={errors}
                        errorKey={key("quiet")}
                      />
                    )}
                    {errors[key("kind")] && <span className="field-error">{errors[key("kind")]}</span>}
                    {(r.kind === "signal_loss" || !hasThreshold(r)) && errors[key("threshold")] && (
                      <span className="field-error">{errors[key("threshold")]}</span>
                    )}
                    {errors[`${sensor}.${i}`] && <span className="field-error">{errors[`${sensor}.${i}`]}</span>}
                  </div>
                );
              })}
              {errors[sensor] && <span className="field-error">{errors[sensor]}</span>}
            </fieldset>
          ))}
          <FormError message={errors[""]} />
          {saved && <p role="status">{saved}</p>}
          <button type="submit">Save alert settings</button>
        </fieldset>
      </form>
    </section>
  );
}

