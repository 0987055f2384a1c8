// The admin console (admin role only), built on react-admin and loaded as its own chunk, so it
// adds nothing to the dashboard's JavaScript. It lives inside the app's /admin page with hash
// routing (/admin#/users), shares the app's session, and replaces react-admin's app bar and
// sidebar with a plain section nav under the app's own header.
import { useMemo, type ReactNode } from "react";
import {
  Admin,
  CustomRoutes,
  defaultTheme,
  LinkBase,
  memoryStore,
  Resource,
  useLocation,
  type RaThemeOptions,
} from "react-admin";
import { Route } from "react-router";
import { useApp } from "../state";
import { sessionAuthProvider } from "./authProvider";
import { adminDataProvider } from "./dataProvider";
import { AuditList, DeviceList, ProfileList, UserList } from "./lists";
import { HealthPage, LatencyPage } from "./status";

const SECTIONS: [string, string][] = [
  ["/users", "Users"],
  ["/profiles", "Profiles"],
  ["/devices", "Devices"],
  ["/audit", "Audit log"],
  ["/latency", "Alert latency"],
  ["/health", "Health"],
];

function ConsoleLayout({ children }: { children: ReactNode }) {
  const { pathname } = useLocation();
  return (
    <>
      <h1>Admin console</h1>
      <nav aria-label="Admin sections">
        <ul>
          {SECTIONS.map(([to, label]) => (
            <li key={to}>
              <LinkBase to={to} aria-current={pathname.startsWith(to) ? "page" : undefined}>
                {label}
              </LinkBase>
            </li>
          ))}
        </ul>
      </nav>
      {children}
    </>
  );
}

const dataProvider = adminDataProvider();

/** react-admin's theme in the app's page colour and font (style.css), so nothing jumps. */
const theme: RaThemeOptions = {
  ...defaultTheme,
  palette: { ...defaultTheme.palette, background: { default: "#f7f8fa" } },
  typography: { ...defaultTheme.typography, fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif' },
};

export default function AdminConsole() {
  const { email } = useApp();
  const authProvider = useMemo(() => sessionAuthProvider(email), [email]);
  // Searches (emails, names) stay in memory: nothing of them in localStorage or the URL.
  const store = useMemo(() => memoryStore(), []);
  return (
    <Admin
      dataProvider={dataProvider}
      authProvider={authProvider}
      layout={ConsoleLayout}
      theme={theme}
      store={store}
      loginPage={false}
      disableTelemetry
    >
      <Resource name="users" list={UserList} />
      <Resource name="profiles" list={ProfileList} />
      <Resource name="devices" list={DeviceList} />
      <Resource name="audit" list={AuditList} />
      <CustomRoutes>
        <Route path="/latency" element={<LatencyPage />} />
        <Route path="/health" element={<HealthPage />} />
      </CustomRoutes>
    </Admin>
  );
}
