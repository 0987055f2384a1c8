// What every page shares: the signed-in user's preferences, profiles and the chosen one.
import { createContext, useContext } from "react";
import type { Schemas } from "./api/client";
import type { GlucoseUnit } from "./lib/units";
import type { Clock } from "./lib/time";

export type Profile = Schemas["ProfileOut"];

export interface Prefs {
  unit: GlucoseUnit;
  clock: Clock;
}

export interface AppState {
  email: string;
  prefs: Prefs;
  setPrefs: (p: Prefs) => void;
  profiles: Profile[];
  profile: Profile | null;
  selectProfile: (id: string) => void;
  reloadProfiles: () => Promise<void>;
  isAdmin: boolean;
  navigate: (path: string) => void;
}

export const AppContext = createContext<AppState | null>(null);

export function useApp(): AppState {
  const state = useContext(AppContext);
  if (!state) throw new Error("useApp outside the signed-in app");
  return state;
}

export function loadPrefs(email: string): Prefs {
  const saved = localStorage.getItem(`vigil.prefs.${email}`);
  return saved ? (JSON.parse(saved) as Prefs) : { unit: "mg/dL", clock: "auto" };
}

export function savePrefs(email: string, prefs: Prefs): void {
  localStorage.setItem(`vigil.prefs.${email}`, JSON.stringify(prefs));
}

export function canManage(p: Profile | null): boolean {
  return !!p && (p.role === "manager" || p.scopes.includes("manage"));
}

export function canRead(p: Profile | null): boolean {
  return !!p && (p.role === "manager" || p.scopes.includes("readings"));
}

export function canSeeAlerts(p: Profile | null): boolean {
  return !!p && (p.role === "manager" || p.scopes.includes("alerts"));
}
