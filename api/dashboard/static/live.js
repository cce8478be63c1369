// Live updates: the page polls the server's read position (a cheap request) and, when it moves,
// tells each subscriber, which fetches only what is new to it.
import { api } from "./api.js";

const POLL_MS = 300;
const subscribers = new Set();
let token = null;
let timer = null;

async function poll() {
  timer = null;
  try {
    const now = await api.readPosition();
    const status = document.getElementById("live-status");
    if (status) status.textContent = `live · ${now || "empty"}`;
    if (token !== null && now !== token) for (const fn of [...subscribers]) await fn(now);
    token = now;
  } catch {
    // A failed poll is retried at the next tick.
  }
  if (subscribers.size) timer = setTimeout(poll, POLL_MS);
}

/** Calls fn after every move of the read position until the returned function is called. */
export function subscribe(fn) {
  subscribers.add(fn);
  if (!timer) timer = setTimeout(poll, 0);
  return () => subscribers.delete(fn);
}
