// react-admin's auth provider over the app's own session: the admin signed in on the
// dashboard (api/client.ts holds the tokens and refreshes them), so the console has no login
// page of its own. A 401 the client could not cure by refreshing ends the whole session;
// any other error (a 403 included) stays on the page as a message.
import type { AuthProvider } from "ra-core";
import { accessToken, signOut } from "../api/client";

export function sessionAuthProvider(email: string): AuthProvider {
  return {
    login: () => Promise.reject(new Error("sign in on Vigil's own page")),
    logout: async () => {
      if (accessToken()) await signOut();
      return false; // no redirect: the app shows its sign-in page
    },
    checkAuth: () => (accessToken() ? Promise.resolve() : Promise.reject(new Error("signed out"))),
    checkError: (error: { status?: number }) =>
      error?.status === 401 ? Promise.reject(new Error("signed out")) : Promise.resolve(),
    getIdentity: () => Promise.resolve({ id: email, fullName: email }),
  };
}
