// The console's entry: restores the credential, runs the hash router, owns the one live feed
// connection, the theme and the pending-approvals badge.

import { api } from "./api.js";
import { currentCredential, onAuthChange, signOut } from "./auth.js";
import { h, replaceChildren, toast } from "./dom.js";
import { onFeedState, startFeed, stopFeed, subscribeFeed } from "./feed.js";

// Each route: a hash pattern, the page module under js/pages/, and the names of its captures.
const ROUTES = [
  { pattern: /^#\/signin$/, page: "signin", params: [] },
  { pattern: /^#\/tasks$/, page: "tasks", params: [] },
  { pattern: /^#\/tasks\/([^/]+)$/, page: "task", params: ["id"] },
  { pattern: /^#\/approvals$/, page: "approvals", params: [] },
  { pattern: /^#\/sessions$/, page: "sessions", params: [] },
  { pattern: /^#\/sessions\/([^/]+)$/, page: "sessions", params: ["id"] },
  { pattern: /^#\/schedules$/, page: "schedules", params: [] },
  { pattern: /^#\/schedules\/([^/]+)$/, page: "schedules", params: ["id"] },
  { pattern: /^#\/keys$/, page: "keys", params: [] },
];
const HOME = "#/tasks";
const THEME_KEY = "taskgate.theme";
const PENDING_COUNT_DELAY_MILLISECONDS = 250;

const root = document.getElementById("page");
let cleanup = null;
let renderCount = 0;
let afterSignIn = HOME;

function matchRoute(hash) {
  for (const route of ROUTES) {
    const match = route.pattern.exec(hash);
    if (match) {
      const params = Object.fromEntries(route.params.map((name, i) => [name, decodeURIComponent(match[i + 1])]));
      return { page: route.page, params };
    }
  }
  return null;
}

async function render() {
  const hash = location.hash || HOME;
  const signedIn = currentCredential() !== null;
  if (!signedIn && hash !== "#/signin") {
    afterSignIn = matchRoute(hash) ? hash : HOME;
    location.replace("#/signin");
    return;
  }
  if (signedIn && hash === "#/signin") {
    location.replace(afterSignIn);
    return;
  }
  const route = matchRoute(hash);
  if (!route) {
    location.replace(HOME);
    return;
  }
  const count = ++renderCount;
  cleanup?.();
  cleanup = null;
  markCurrentNav(route.page);
  let page;
  try {
    page = (await import(`./pages/${route.page}.js`)).default;
  } catch {
    replaceChildren(root, h("h1", {}, "Not available"), h("p", {}, "This page is not part of this console."));
    return;
  }
  if (count !== renderCount) return;
  document.title = `${page.title} · taskgate`;
  root.replaceChildren();
  cleanup = page.render(root, route.params) || null;
  root.focus({ preventScroll: true });
}

function markCurrentNav(page) {
  const section = page === "task" ? "tasks" : page;
  for (const link of document.querySelectorAll("#nav a[data-route]")) {
    if (link.dataset.route === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

// The theme: the reader's choice if they made one (kept in localStorage: it is no secret), else
// the system's; applied as data-theme on <html>, which console.css reads.
function applyTheme() {
  const chosen = localStorage.getItem(THEME_KEY);
  const dark = chosen ? chosen === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.dataset.theme = dark ? "dark" : "light";
  const toggle = document.getElementById("theme-toggle");
  toggle.setAttribute("aria-pressed", String(dark));
  toggle.textContent = "Dark theme";
}

function toggleTheme() {
  const dark = document.documentElement.dataset.theme === "dark";
  localStorage.setItem(THEME_KEY, dark ? "light" : "dark");
  applyTheme();
}

// The badge of pending approvals: counted on sign-in, recounted when the feed or a page says
// approvals changed (a few changes at once are one request).
let pendingCountTimer = null;

function recountPendingApprovals() {
  clearTimeout(pendingCountTimer);
  pendingCountTimer = setTimeout(async () => {
    const badge = document.getElementById("approvals-count");
    if (currentCredential() === null) return;
    try {
      const body = await api("GET", "/api/v1/approvals", { query: { status: "pending", limit: 1 } });
      const total = body.total_count;
      badge.textContent = `${total} pending`;
      badge.hidden = total === 0;
    } catch {
      badge.hidden = true;
    }
  }, PENDING_COUNT_DELAY_MILLISECONDS);
}

function showSignedIn(signedIn) {
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("sign-out").hidden = !signedIn;
  if (signedIn) {
    startFeed();
    recountPendingApprovals();
  } else {
    stopFeed();
  }
}

function start() {
  applyTheme();
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", applyTheme);
  document.getElementById("theme-toggle").addEventListener("click", toggleTheme);
  document.getElementById("sign-out").addEventListener("click", () => {
    signOut();
    toast("Signed out.");
  });
  onFeedState((state) => {
    document.getElementById("live-status").hidden = state !== "unavailable";
    // Approvals asked or decided while the feed was not live came in no frame: count again.
    if (state === "live") recountPendingApprovals();
  });
  subscribeFeed(({ event }) => {
    if (event === "approval.requested" || event === "approval.decided") recountPendingApprovals();
  });
  document.addEventListener("approvals:changed", recountPendingApprovals);
  onAuthChange((signedIn) => {
    showSignedIn(signedIn);
    render();
  });
  window.addEventListener("hashchange", render);
  showSignedIn(currentCredential() !== null);
  render();
}

start();
