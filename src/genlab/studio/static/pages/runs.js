// Runs: every run under --runs, filterable; a run's page with its curves updating live; and
// the one training started from the page (presets), with a progress bar and a Stop button.
import { el, fileUrl, fmt, get, poll, post } from "../api.js";

const COLUMNS = ["model", "data", "step", "loss", "nll_nats", "neg_elbo_nats", "fid", "accuracy",
                 "mean_return", "reward"];
const PAGE_NAMES = { samples: "Samples", latent: "Latent", draw: "Draw", fewshot: "Few-shot",
                     paint: "Paint", bandits: "Bandits", agents: "Agents" };

function presetButtons(presets, disabled) {
  return Object.entries(presets).map(([name, label]) =>
    el("button", { class: "quiet", "data-preset": name, disabled,
                   onclick: () => post("/api/train", { preset: name }).then(() => refreshBadge()) },
       label));
}

export async function runsPage(root) {
  const [{ runs, root: dir }, status] = await Promise.all([get("/api/runs"), get("/api/train")]);
  root.append(el("h1", {}, "Runs"));
  const busy = ["running", "stopping"].includes(status.state);
  if (!runs.length) {
    root.append(el("div", { class: "empty" },
      el("p", {}, `No runs under ${dir} yet. Start one: the VAE learns to draw digits in a minute, `,
         "and its curve moves within seconds."),
      el("div", { class: "row" }, presetButtons(status.presets, busy))));
    return watchRuns(root, runs.length);
  }
  root.append(el("div", { class: "row" }, el("span", { class: "muted" }, "Train:"),
                 presetButtons(status.presets, busy)));
  const filter = el("input", { type: "search", placeholder: "filter: model, data, run",
                               "aria-label": "filter runs" });
  const cols = COLUMNS.filter((c) => runs.some((r) => r[c] !== undefined && r[c] !== null));
  const body = el("tbody");
  const draw = () => {
    const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    body.replaceChildren(...runs
      .filter((r) => words.every((w) => `${r.run} ${r.model} ${r.data}`.toLowerCase().includes(w)))
      .map((r) => el("tr", { "data-run": r.run },
        el("td", {}, el("a", { href: `#/run/${encodeURIComponent(r.run)}` }, r.run),
           r.training ? el("span", { class: "muted" }, " (training)") : null),
        cols.map((c) => el("td", {}, fmt(r[c]))),
        el("td", {}, r.status === "ok" ? "" : r.status))));
  };
  filter.addEventListener("input", draw);
  root.append(el("div", { class: "row" }, filter),
              el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "run"),
                 cols.map((c) => el("th", {}, c)), el("th", {}))), body));
  draw();
  return watchRuns(root, runs.length);
}

// Re-show the runs page when a run appears (a training started from the page).
function watchRuns(root, count) {
  const timer = setInterval(async () => {
    const { runs } = await poll("/api/runs/names").catch(() => ({ runs: [] }));
    if (runs.length !== count) window.dispatchEvent(new HashChangeEvent("hashchange"));
  }, 3000);
  return () => clearInterval(timer);
}

export async function runPage(root, run) {
  const detail = await get("/api/run", { run });
  const step = el("span", { id: "step" }, fmt(detail.step));
  root.append(el("h1", {}, run),
    el("p", { class: "muted" }, `${detail.model} on ${detail.data}, step `, step, detail.training ? " (training)" : ""),
    el("div", { class: "row" }, detail.pages.map((p) =>
      el("a", { href: `#/${p}/${encodeURIComponent(run)}` }, PAGE_NAMES[p]))));
  const curves = el("img", { id: "curves", alt: "training curves" });
  const progress = el("img", { id: "progress", alt: "latest samples", class: "pixelated" });
  const progressBox = el("div", { hidden: !detail.progress },
                        el("h2", {}, "Samples at the latest checkpoint"), progress);
  root.append(el("h2", {}, "Training curves"), curves, progressBox);
  const pictures = el("div", { id: "pictures" });
  const showPictures = (names) => {
    pictures.dataset.count = names.length;
    pictures.replaceChildren(...(names.length ? [el("h2", {}, "Pictures"),
      el("div", { class: "cards" }, names.map((p) =>
        el("figure", { class: "card" }, el("img", { src: `${fileUrl(run, p)}&v=${Date.now()}`, alt: p,
                                                    style: "max-width: 360px" }),
           el("figcaption", {}, p))))] : []));
  };
  // Every 1.5 s: new metrics rows redraw the curves; new checkpoint samples and new pictures
  // (written when a training ends) show as they appear.
  let next = 0;
  let shownProgress = detail.progress;
  const refresh = async () => {
    const m = await poll("/api/metrics", { run, since: next }).catch(() => null);
    if (m && (m.next !== next || next === 0)) {
      next = m.next;
      if (m.rows.length) step.textContent = m.rows.at(-1).step;
      curves.src = `/api/curves.svg?${new URLSearchParams({ run, n: next })}`;
      curves.dataset.rows = next;
    }
    const d = await poll("/api/pictures", { run }).catch(() => null);
    if (!d) return;
    if (String(d.pictures.length) !== pictures.dataset.count) showPictures(d.pictures);
    if (d.progress && (d.progress !== shownProgress || !progress.src)) {
      shownProgress = d.progress;
      progress.src = fileUrl(run, d.progress);
      progressBox.hidden = false;
    }
  };
  showPictures(detail.pictures);
  await refresh();
  const timer = setInterval(refresh, 1500);
  if (detail.eval) root.append(el("h2", {}, "Evaluation (eval.json)"),
                               el("pre", {}, JSON.stringify(detail.eval, null, 1)));
  root.append(pictures);
  root.append(el("h2", {}, "Config"), el("pre", {}, JSON.stringify(detail.config, null, 1)));
  return () => clearInterval(timer);
}

// The header's training badge: what trains, how far, and Stop (as Ctrl-C: checkpoint saved).
// Built once and updated in place, so the button never moves from under the pointer.
let badge = null;
export function trainingBadge(node) {
  const stop = el("button", { id: "stop", onclick: () => post("/api/train/stop", {}).then(refreshBadge) },
                  "Stop");
  badge = { node, link: el("a", {}), bar: el("progress", { max: 1, id: "train-progress" }),
            state: el("span", { id: "train-state" }), stop, error: el("span", { class: "muted" }) };
  node.append(badge.link, badge.bar, badge.state, stop, badge.error);
  refreshBadge();
  setInterval(refreshBadge, 1500);
}

export async function refreshBadge() {
  const s = await poll("/api/train").catch(() => null);
  if (!s || !badge) return;
  const active = ["running", "stopping"].includes(s.state);
  badge.node.hidden = s.state === "idle";
  for (const b of document.querySelectorAll("button[data-preset]")) b.disabled = active;
  if (s.state === "idle") return;
  badge.link.href = `#/run/${encodeURIComponent(s.run)}`;
  badge.link.textContent = s.label;
  badge.bar.value = s.progress;
  badge.state.textContent = `${s.state}, step ${s.step}`;
  badge.stop.hidden = !active;
  badge.stop.disabled = s.state === "stopping";
  badge.error.textContent = s.error || "";
}
