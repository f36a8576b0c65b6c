// Where the console's credential lives and how requests carry it (docs/security.md, "The web
// console"): in memory and in this tab's sessionStorage, never in a cookie or localStorage, and
// always sent in a header, so no other site can make the browser present it.

import { api } from "./api.js";

const STORAGE_KEY = "taskgate.credential";
// An access token this close to its expiry is refreshed before it is sent.
const REFRESH_MARGIN_MILLISECONDS = 60_000;

let credential = load();
// Counts sign-ins and refreshes, so an answer to a request sent with an older credential never
// signs out (or refreshes) the one held now.
let generation = 0;
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
  generation += 1;
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

/**
 * Return {headers, generation}: the headers that authenticate a request (an access token about to
 * expire is refreshed first) and which credential they carry, for recoverFromUnauthorized.
 */
export async function authHeaders() {
  if (credential?.kind === "token" && credential.expiresAt - Date.now() < REFRESH_MARGIN_MILLISECONDS) {
    await refreshTokens();
  }
  return { headers: headersFor(credential), generation };
}

/**
 * After a 401 to a request sent with credential `sentWith` (authHeaders' generation): return true
 * when a retry may succeed (the credential changed since, or the tokens were refreshed: a rotation,
 * the new pair replacing the old), else sign out and return false. A second 401 to a retry is
 * passed here with retried=true and signs out. Concurrent callers share one refresh, since a
 * refresh token shown twice revokes its whole family.
 */
export async function recoverFromUnauthorized(sentWith, { retried = false } = {}) {
  if (credential === null) return false;
  if (sentWith !== generation) return !retried;
  if (credential.kind !== "token" || retried) {
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
