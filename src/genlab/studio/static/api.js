// Calls to the studio's JSON API. Every failure is shown as one line at the top of the page.
const errorLine = () => document.getElementById("error");

export function showError(message) {
  const line = errorLine();
  line.textContent = message;
  line.hidden = !message;
}

// A background call (a poll) neither shows its failure nor clears the line.
async function call(method, path, body, background = false) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    if (!background) showError(`the studio does not answer (${e.message}); is genlab studio still running?`);
    throw e;
  }
  const value = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) {
    if (!background) showError(value.error || `HTTP ${response.status}`);
    throw new Error(value.error);
  }
  if (!background) showError("");
  return value;
}

export const get = (path, params = {}) =>
  call("GET", `${path}?${new URLSearchParams(params)}`);
export const poll = (path, params = {}) =>
  call("GET", `${path}?${new URLSearchParams(params)}`, undefined, true);
export const post = (path, body) => call("POST", path, body);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

export const fileUrl = (run, path) => `/api/file?${new URLSearchParams({ run, path })}`;

export function fmt(value) {
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(3);
  return value === null || value === undefined ? "-" : String(value);
}

// A page with no run chosen: the runs it works for, each a link to the page with that run.
export async function pickRun(root, page, title, hint) {
  const { runs } = await get("/api/runs");
  const usable = runs.filter((r) => r.pages.includes(page));
  root.append(el("h1", {}, title));
  if (!usable.length) {
    root.append(el("p", { class: "empty" }, hint, " ", el("a", { href: "#/runs" }, "Train one")));
    return;
  }
  root.append(el("p", { class: "muted" }, "Choose a run:"));
  root.append(el("ul", {}, usable.map((r) =>
    el("li", {}, el("a", { href: `#/${page}/${encodeURIComponent(r.run)}` }, r.run),
       el("span", { class: "muted" }, ` ${r.model} on ${r.data}, step ${r.step}`)))));
}
