// The columns every audit-log table shows (the admin console's and "Who viewed my data"):
// when, who and what, in the reader's clock.
import type { Schemas } from "../api/client";
import { formatDateTime, type Clock } from "../lib/time";
import type { Column } from "./Table";

type Entry = Schemas["AuditEntry"];

export function auditColumns(clock: Clock): Record<"when" | "who" | "what", Column<Entry>> {
  return {
    when: { header: "When", cell: (a) => formatDateTime(new Date(a.at), clock) },
    who: { header: "Who", cell: (a) => a.actor_email ?? a.actor_kind },
    what: { header: "What", cell: (a) => a.action },
  };
}
