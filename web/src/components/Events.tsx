// Events (meal, exercise, insulin, note): list, add, edit and delete.
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { ApiError, get, send, type Schemas } from "../api/client";
import { afterFirstScreen } from "../lib/preload";
import { formatDateTime, toLocalInput, type Clock } from "../lib/time";
import { fieldErrors, type FieldErrors } from "../lib/validation";
import { useApp } from "../state";
import { Field, FormError, Select } from "./Field";

type EventOut = Schemas["EventOut"];
const KINDS = ["meal", "exercise", "insulin", "note"] as const;

export function eventLabel(e: EventOut, clock: Clock): string {
  const d = e.details as Record<string, unknown>;
  const what =
    e.kind === "meal"
      ? `Meal${d.carbs_g != null ? ` ${d.carbs_g} g carbs` : ""}${d.description ? ` (${d.description})` : ""}`
      : e.kind === "exercise"
        ? `Exercise: ${d.type}, ${d.duration_min} min`
        : e.kind === "insulin"
          ? `Insulin ${d.units} U ${d.insulin_type}`
          : e.kind.charAt(0).toUpperCase() + e.kind.slice(1);
  return `${what}${e.note ? ` — ${e.note}` : ""} at ${formatDateTime(new Date(e.ts), clock)}`;
}

export function EventsSection({ profileId, canEdit, onChange }: { profileId: string; canEdit: boolean; onChange: () => void }) {
  const { prefs } = useApp();
  const [events, setEvents] = useState<EventOut[]>([]);
  const [editing, setEditing] = useState<EventOut | "new" | null>(null);

  const load = useCallback(async () => {
    const start = new Date(Date.now() - 3 * 86_400_000).toISOString();
    setEvents(await get<EventOut[]>(`/v1/profiles/${profileId}/events?start=${encodeURIComponent(start)}`));
  }, [profileId]);
  useEffect(() => {
    let gone = false;
    afterFirstScreen(() => gone || load().catch(() => setEvents([])));
    return () => {
      gone = true;
    };
  }, [load]);

  const changed = async () => {
    setEditing(null);
    await load();
    onChange();
  };

  return (
    <section aria-labelledby="events-title">
      <div className="row">
        <h2 id="events-title">Events</h2>
        {canEdit && editing === null && (
          <button type="button" onClick={() => setEditing("new")}>
            Add event
          </button>
        )}
      </div>
      {editing !== null && (
        <EventForm profileId={profileId} event={editing === "new" ? null : editing} onDone={changed} onCancel={() => setEditing(null)} />
      )}
      {events.length === 0 ? (
        <p>No events in the last 3 days.</p>
      ) : (
        <ul className="events">
          {[...events].reverse().map((e) => (
            <li key={e.id}>
              <span>{eventLabel(e, prefs.clock)}</span>
              {canEdit && (
                <span className="actions">
                  <button type="button" onClick={() => setEditing(e)} aria-label={`Edit ${eventLabel(e, prefs.clock)}`}>
                    Edit
                  </button>
                  <button
                    type="button"
                    aria-label={`Delete ${eventLabel(e, prefs.clock)}`}
                    onClick={async () => {
                      await send("DELETE", `/v1/profiles/${profileId}/events/${e.id}`);
                      await changed();
                    }}
                  >
                    Delete
                  </button>
                </span>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function EventForm({ profileId, event, onDone, onCancel }: { profileId: string; event: EventOut | null; onDone: () => void; onCancel: () => void }) {
  const [kind, setKind] = useState<string>(event?.kind ?? "meal");
  const [errors, setErrors] = useState<FieldErrors>({});
  const d = (event?.details ?? {}) as Record<string, string | number | undefined>;

  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const num = (k: string) => (f.get(k) === "" || f.get(k) === null ? null : Number(f.get(k)));
    const details =
      kind === "meal"
        ? { carbs_g: num("carbs_g"), description: f.get("description") || null }
        : kind === "exercise"
          ? { type: f.get("type"), duration_min: num("duration_min"), intensity: f.get("intensity") }
          : kind === "insulin"
            ? { units: num("units"), insulin_type: f.get("insulin_type") }
            : {};
    const body = {
      kind,
      ts: new Date(String(f.get("ts"))).toISOString(),
      note: f.get("note") || null,
      details,
      ...(event ? {} : { idempotency_key: crypto.randomUUID() }),
    };
    try {
      if (event) await send("PUT", `/v1/profiles/${profileId}/events/${event.id}`, body);
      else await send("POST", `/v1/profiles/${profileId}/events`, body);
      onDone();
    } catch (err) {
      setErrors(fieldErrors(err instanceof ApiError ? err.detail : String(err)));
    }
  };

  const err = (k: string) => errors[k] ?? errors[`details.${k}`] ?? errors[`${kind}.details.${k}`];
  return (
    <form onSubmit={submit} className="card" aria-label={event ? "Edit event" : "Add event"}>
      <Select label="Kind" value={kind} onChange={(e) => setKind(e.target.value)} disabled={!!event}>
        {KINDS.map((k) => (
          <option key={k} value={k}>
            {k}
          </option>
        ))}
      </Select>
      <Field label="Time" name="ts" type="datetime-local" required defaultValue={toLocalInput(event ? new Date(event.ts) : new Date())} error={err("ts")} />
      {kind === "meal" && (
        <>
          <Field label="Carbohydrates (g)" name="carbs_g" type="number" min={0} step="any" defaultValue={d.carbs_g ?? ""} error={err("carbs_g")} />
          <Field label="Description" name="description" defaultValue={d.description ?? ""} error={err("description")} />
        </>
      )}
      {kind === "exercise" && (
        <>
          <Field label="Activity" name="type" required defaultValue={d.type ?? ""} error={err("type")} />
          <Field label="Duration (min)" name="duration_min" type="number" required min={1} defaultValue={d.duration_min ?? ""} error={err("duration_min")} />
          <Select label="Intensity" name="intensity" defaultValue={(d.intensity as string) ?? "moderate"}>
            <option value="low">low</option>
            <option value="moderate">moderate</option>
            <option value="high">high</option>
          </Select>
        </>
      )}
      {kind === "insulin" && (
        <>
          <Field label="Units" name="units" type="number" required step="any" min={0} defaultValue={d.units ?? ""} error={err("units")} />
          <Select label="Insulin type" name="insulin_type" defaultValue={(d.insulin_type as string) ?? "rapid"}>
            <option value="rapid">rapid</option>
            <option value="long">long</option>
          </Select>
        </>
      )}
      <Field label="Note" name="note" defaultValue={event?.note ?? ""} error={err("note")} />
      <FormError message={errors[""] ?? errors["body"]} />
      <div className="actions">
        <button type="submit">{event ? "Save event" : "Add"}</button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
