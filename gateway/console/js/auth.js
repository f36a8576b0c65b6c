// Where the console's credential lives and how requests carry it (docs/security.md, "The web
// console"): in memory and in this tab's sessionStorage, never in a cookie or localStorage, and
// always sent in a header, so no other site can make the browser present it.

import { api } from "./api.js";

const STORAGE_KEY = "taskgate.credential";
// An access token this close to its expiry is refreshed before it is sent.
const REFRESH_MARGIN_MILLISECONDS = 60_000;

let credential = load();
let user = null;
let refreshing = null;
const listeners = new Set();

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(STORAGE_KEY)) || null;
  } catch {
    return null;
  }
}

function store(next) {
  credential = next;
  user = null;
  if (next) {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(next));
  } else {
    sessionStorage.removeItem(STORAGE_KEY);
  }
}

function tokenPair(body) {
  return {
    kind: "token",
    accessToken: body.access_token,
    refreshToken: body.refresh_token,
    expiresAt: Date.now() + Number(body.expires_in || 3600) * 1000,
  };
}

function notify() {
  for (const listener of listeners) listener(credential !== null);
}

/** Call fn(signedIn) whenever the caller signs in or out; return a function that stops it. */
export function onAuthChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Sign in with email and password: keep the access and refresh tokens; throws ApiError. */
export async function signInWithPassword(email, password) {
  const body = await api("POST", "/api/v1/auth/login", { body: { email, password }, anonymous: true });
  store(tokenPair(body));
  notify();
}

/** Sign in with an API key, checked against GET /api/v1/auth/me before it is kept; throws ApiError. */
export async function signInWithKey(key) {
  const candidate = { kind: "key", apiKey: key.trim() };
  const me = await api("GET", "/api/v1/auth/me", { anonymous: true, headers: headersFor(candidate) });
  store(candidate);
  user = me;
  notify();
}

/** Forget the credential (this tab only). */
export function signOut() {
  if (credential === null) return;
  store(null);
  notify();
}

/** Return the kind of credential held ("key" or "token") or null; never the secret itself. */
export function currentCredential() {
  return credential ? { kind: credential.kind } : null;
}

/** Return the signed-in user (GET /api/v1/auth/me), fetched once per sign-in. */
export async function currentUser() {
  if (user === null && credential !== null) user = await api("GET", "/api/v1/auth/me");
  return user;
}

function headersFor(held) {
  if (!held) return {};
  if (held.kind === "key") return { "X-API-Key": held.apiKey };
  return { Authorization: `Bearer ${held.accessToken}` };
}

/** Return the headers that authenticate a request, refreshing an access token about to expire. */
export async function authHeaders() {
  if (credential?.kind === "token" && credential.expiresAt - Date.now() < REFRESH_MARGIN_MILLISECONDS) {
    await refreshTokens();
  }
  return headersFor(credential);
}

/**
 * After a 401: refresh the tokens once (a rotation: the new pair replaces the old) and return true,
 * or sign out and return false. Concurrent callers share one refresh, since a refresh token shown
 * twice revokes its whole family.
 */
export async function recoverFromUnauthorized() {
  if (credential?.kind !== "token") {
    signOut();
    return false;
  }
  return refreshTokens();
}

function refreshTokens() {
  if (refreshing === null) {
    const held = credential;
    refreshing = api("POST", "/api/v1/auth/refresh", { body: { refresh_token: held.refreshToken }, anonymous: true })
      .then((body) => {
        if (credential === held) store(tokenPair(body));
        return true;
      })
      .catch(() => {
        signOut();
        return false;
      })
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}
