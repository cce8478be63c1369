// Views live in the URL's hash (#/path?query), so every view is a link that reproduces it, and
// back/forward move between views without reloading.

export function current() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = hash.split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query) };
}

export function href(parts, params = {}) {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "" || (Array.isArray(v) && !v.length)) continue;
    search.set(k, Array.isArray(v) ? v.join(",") : String(v));
  }
  const s = search.toString();
  return `#/${parts.map(encodeURIComponent).join("/")}${s ? `?${s}` : ""}`;
}

export function go(parts, params) {
  location.hash = href(parts, params);
}

/** Changes the current view's query without a new history entry (e.g. while typing or scrolling). */
export function replaceParams(params) {
  const { parts } = current();
  history.replaceState(null, "", href(parts, params));
}

export function list(params, name) {
  const v = params.get(name);
  return v ? v.split(",").filter(Boolean) : [];
}

/** A `lo,hi` range (a zoom) from the query, or null. */
export function range(params, name) {
  const v = params.get(name);
  return v ? v.split(",").map(Number) : null;
}
