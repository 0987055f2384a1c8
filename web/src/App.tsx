// The app shell: sign in / sign up, then the pages of the chosen profile, the live stream
// shared by all pages, and the admin console (its own chunk, loaded only for admins).
import { lazy, Suspense, useCallback, useEffect, useMemo, useState, type FormEvent } from "react";
import { accessToken, ApiError, get, onSignOut, send, signIn, signOut } from "./api/client";
import { Field, FormError } from "./components/Field";
import { StreamProvider } from "./components/StreamContext";
import { afterFirstScreen, chooseProfile, getFirst } from "./lib/preload";
import { fieldErrors } from "./lib/validation";
import { AlertsPage } from "./pages/Alerts";
import { AccountPage } from "./pages/Account";
import { DashboardPage } from "./pages/Dashboard";
import { SharingPage } from "./pages/Sharing";
import { StatsPage } from "./pages/Stats";
import { AppContext, loadPrefs, savePrefs, type AppState, type Prefs, type Profile } from "./state";

const AdminConsole = lazy(() => import("./admin/Admin"));

const PAGES: [string, string][] = [
  ["/", "Dashboard"],
  ["/stats", "Statistics"],
  ["/alerts", "Alerts"],
  ["/sharing", "Sharing"],
  ["/account", "Account"],
];

function usePath(): [string, (p: string) => void] {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const onPop = () => setPath(location.pathname);
    addEventListener("popstate", onPop);
    return () => removeEventListener("popstate", onPop);
  }, []);
  const navigate = useCallback((p: string) => {
    history.pushState(null, "", p);
    setPath(p);
  }, []);
  return [path, navigate];
}

export function App() {
  const [email, setEmail] = useState<string | null>(
    accessToken() ? sessionStorage.getItem("vigil.email") : null,
  );
  useEffect(() => onSignOut(() => setEmail(null)), []);
  if (!email) {
    return (
      <SignIn
        onSignedIn={(e) => {
          sessionStorage.setItem("vigil.email", e);
          setEmail(e);
        }}
      />
    );
  }
  return <SignedIn email={email} />;
}

function SignIn({ onSignedIn }: { onSignedIn: (email: string) => void }) {
  const [mode, setMode] = useState<"in" | "up">("in");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState("");

  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const email = String(form.get("email"));
    const password = String(form.get("password"));
    setBusy(true);
    setErrors({});
    try {
      if (mode === "up") {
        await send("POST", "/v1/auth/signup", { email, password, name: String(form.get("name")) });
        setNotice("Account created (if this email was new). Signing you in …");
      }
      await signIn(email, password);
      onSignedIn(email);
    } catch (err) {
      const detail = err instanceof ApiError ? err.detail : String(err);
      const errs = fieldErrors(detail);
      if (err instanceof ApiError && err.status === 401 && mode === "in") {
        errs[""] = "Wrong email or password, or the account is disabled.";
      }
      setErrors(errs);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="signin">
      <h1>Vigil</h1>
      <form onSubmit={submit} aria-labelledby="signin-title">
        <h2 id="signin-title">{mode === "in" ? "Sign in" : "Create an account"}</h2>
        {mode === "up" && <Field label="Name" name="name" required autoComplete="name" error={errors.name} />}
        <Field label="Email" name="email" type="email" required autoComplete="email" error={errors.email} />
        <Field
          label="Password"
          name="password"
          type="password"
          required
          autoComplete={mode === "in" ? "current-password" : "new-password"}
          error={errors.password}
        />
        <FormError message={errors[""]} />
        {notice && <p role="status">{notice}</p>}
        <button type="submit" disabled={busy}>
          {mode === "in" ? "Sign in" : "Sign up"}
        </button>
      </form>
      <button type="button" className="link" onClick={() => (setMode(mode === "in" ? "up" : "in"), setErrors({}))}>
        {mode === "in" ? "New here? Create an account" : "I have an account: sign in"}
      </button>
    </main>
  );
}

function SignedIn({ email }: { email: string }) {
  const [path, navigate] = usePath();
  const [prefs, setPrefsState] = useState<Prefs>(() => loadPrefs(email));
  const [profiles, setProfiles] = useState<Profile[] | null>(null);
  const [selected, setSelected] = useState<string | null>(localStorage.getItem("vigil.profile"));
  const [isAdmin, setIsAdmin] = useState(false);

  const reloadProfiles = useCallback(async () => {
    setProfiles(await getFirst<Profile[]>("/v1/profiles"));
  }, []);
  useEffect(() => {
    reloadProfiles().catch(() => setProfiles([]));
    // Only shows the Admin link: it waits for the first screen rather than queue beside it.
    afterFirstScreen(() =>
      get("/v1/admin/users?limit=1")
        .then(() => setIsAdmin(true))
        .catch(() => setIsAdmin(false)),
    );
  }, [reloadProfiles]);

  const profile = profiles ? chooseProfile(profiles, selected) : null;
  const state: AppState = useMemo(
    () => ({
      email,
      prefs,
      setPrefs: (p) => (savePrefs(email, p), setPrefsState(p)),
      profiles: profiles ?? [],
      profile,
      selectProfile: (id) => (localStorage.setItem("vigil.profile", id), setSelected(id)),
      reloadProfiles,
      isAdmin,
      navigate,
    }),
    [email, prefs, profiles, profile, reloadProfiles, isAdmin, navigate],
  );

  const pages = isAdmin ? [...PAGES, ["/admin", "Admin"] as [string, string]] : PAGES;
  const current = pages.find(([p]) => p === path || (p !== "/" && path.startsWith(p)))?.[0] ?? "/";

  return (
    <AppContext.Provider value={state}>
      <StreamProvider onRevoked={reloadProfiles} subscription={profiles && profiles.map((p) => p.id).join()}>
        <a href="#main" className="skip">
          Skip to content
        </a>
        <header className="top">
          <span className="brand">Vigil</span>
          {profiles && profiles.length > 0 && (
            <span className="profile-pick">
              <label htmlFor="profile-pick">Profile</label>
              <select id="profile-pick" value={profile?.id ?? ""} onChange={(e) => state.selectProfile(e.target.value)}>
                {profiles.map((p) => (
                  <option key={p.id} value={p.id}>
                    {p.name}
                    {p.role === "follower" ? " (following)" : ""}
                  </option>
                ))}
              </select>
            </span>
          )}
          <button type="button" className="link" onClick={() => signOut()}>
            Sign out
          </button>
        </header>
        <nav aria-label="Pages">
          <ul>
            {pages.map(([p, label]) => (
              <li key={p}>
                <a
                  href={p}
                  aria-current={current === p ? "page" : undefined}
                  onClick={(e) => {
                    e.preventDefault();
                    navigate(p);
                  }}
                >
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <main id="main" tabIndex={-1}>
          {profiles === null ? (
            <p>Loading …</p>
          ) : current === "/admin" ? (
            <Suspense fallback={<p>Loading the admin console …</p>}>
              <AdminConsole />
            </Suspense>
          ) : current === "/account" ? (
            <AccountPage />
          ) : current === "/sharing" ? (
            <SharingPage />
          ) : !profile ? (
            <NoProfile />
          ) : current === "/stats" ? (
            <StatsPage key={profile.id} />
          ) : current === "/alerts" ? (
            <AlertsPage key={profile.id} />
          ) : (
            <DashboardPage key={profile.id} />
          )}
        </main>
      </StreamProvider>
    </AppContext.Provider>
  );
}

function NoProfile() {
  return (
    <section>
      <h1>No profile to show</h1>
      <p>
        You manage no profile and follow none. Accept an invitation on the <a href="/sharing">Sharing</a> page.
      </p>
    </section>
  );
}
