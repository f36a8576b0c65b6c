// Calling the gateway's JSON API with the signed-in caller's credential.

import { authHeaders, currentCredential, recoverFromUnauthorized } from "./auth.js";

/** An error answer of the API, from its body {error, code, request_id, details}. */
export class ApiError extends Error {
  constructor(status, code, message, details = [], requestId = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
    this.requestId = requestId;
  }
}

/** Return the ApiError of a failed response, whatever its body. */
export async function errorFromResponse(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's page, a dropped connection): the status alone says what happened.
  }
  const message = typeof body?.error === "string" ? body.error : `The request failed (HTTP ${response.status})`;
  const details = Array.isArray(body?.details) ? body.details : [];
  return new ApiError(response.status, body?.code || "http_error", message, details, body?.request_id || null);
}

/** Return path with the query's defined values appended. */
export function withQuery(path, query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * Send a request with the caller's credential and return the Response unread (for a body that is
 * not JSON, such as a download). A 401 refreshes an access token once and retries; a second 401,
 * or one with an API key, signs out to #/signin. `anonymous` sends no stored credential (sign-in,
 * refresh).
 */
export async function apiFetch(method, path, { query, body, headers, anonymous = false } = {}) {
  const url = withQuery(path, query);
  let generation = null;
  const send = async () => {
    const auth = anonymous ? { headers: {}, generation: null } : await authHeaders();
    generation = auth.generation;
    const sent = { Accept: "application/json", ...auth.headers, ...headers };
    if (body !== undefined) sent["Content-Type"] = "application/json";
    return fetch(url, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  };
  let response = await send();
  if (response.status === 401 && !anonymous && (await recoverFromUnauthorized(generation))) {
    response = await send();
    if (response.status === 401) await recoverFromUnauthorized(generation, { retried: true });
  }
  if (response.status === 401 && !anonymous && currentCredential() === null) location.hash = "#/signin";
  return response;
}

/** Send a request as apiFetch does and return its JSON body (null when empty); throws ApiError. */
export async function api(method, path, options = {}) {
  const response = await apiFetch(method, path, options);
  if (!response.ok) throw await errorFromResponse(response);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}
