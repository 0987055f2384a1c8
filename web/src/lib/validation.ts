// The API's error bodies as messages per form field (422 `detail` items name a `loc`).
export interface ErrorItem {
  loc: (string | number)[];
  msg: string;
  type?: string;
}

export type FieldErrors = Record<string, string>;

/** Field key of an error's location: the path after "body"/"query", joined with dots. */
export function fieldKey(loc: (string | number)[]): string {
  const start = loc[0] === "body" || loc[0] === "query" || loc[0] === "path" ? 1 : 0;
  return loc.slice(start).join(".");
}

/** Messages by field key; a plain-string detail (or an item with no field) goes under "". */
export function fieldErrors(detail: unknown): FieldErrors {
  const out: FieldErrors = {};
  if (typeof detail === "string") {
    out[""] = detail;
    return out;
  }
  if (!Array.isArray(detail)) return out;
  for (const item of detail as ErrorItem[]) {
    const key = fieldKey(item.loc ?? []);
    out[key] = out[key] ? `${out[key]}; ${item.msg}` : item.msg;
  }
  return out;
}
