// Agents: an IMPALA or A2C agent plays an episode (replayed as it was, with its return); a
// World Models M becomes a game engine you drive with the arrow keys, at temperature tau.
import { el, get, pickRun, post } from "../api.js";

export async function agentsPage(root, run) {
  if (!run) return pickRun(root, "agents", "Agents", "Train an IMPALA or A2C agent, or a World Models M.");
  const detail = await get("/api/run", { run });
  root.append(el("h1", {}, `Agents: ${run}`));
  return detail.model === "mdnrnn" ? drive(root, run) : playback(root, run, detail);
}

function playback(root, run, detail) {
  const tasks = (detail.config.model_options.env || "").split(","); // --env, comma-separated
  const task = el("select", { id: "task" }, tasks.map((t, i) => el("option", { value: i }, t)));
  const seed = el("input", { type: "number", id: "seed", value: 0, style: "width: 5rem" });
  const movie = el("img", { id: "episode", class: "pixelated", alt: "episode", style: "min-width: 320px" });
  const info = el("p", { id: "return", class: "muted" });
  const go = el("button", { id: "play", onclick: async () => {
    go.disabled = true;
    info.textContent = "playing...";
    try {
      const r = await post("/api/episode", { run, task: Number(task.value), seed: Number(seed.value) });
      movie.src = r.gif;
      info.textContent = `${r.env}: return ${r.return}, ${r.frames} frames, played in ${r.ms} ms`;
    } catch {
      info.textContent = "";
    } finally {
      go.disabled = false;
    }
  } }, "Play an episode");
  root.append(el("div", { class: "row" }, el("label", {}, "game ", task), el("label", {}, "seed ", seed), go),
              info, movie);
}

// Drive in the dream: arrows steer, accelerate and brake; M imagines the next frame, V draws it.
function drive(root, run) {
  const tau = el("input", { type: "range", id: "tau", min: 0.1, max: 1.5, step: 0.05, value: 1.15 });
  const tauText = el("span", { class: "muted" }, "tau 1.15");
  tau.addEventListener("input", () => { tauText.textContent = `tau ${tau.value}`; });
  const frame = el("img", { id: "dream", class: "pixelated big", alt: "the dream" });
  const info = el("p", { id: "dream-info", class: "muted" });
  const held = new Set();
  let dream = null;
  let total = 0;
  let busy = false;
  const start = async () => {
    const r = await post("/api/dream/start", { run, tau: Number(tau.value), seed: Math.floor(Math.random() * 1e6) });
    dream = r.dream;
    total = 0;
    show(r);
  };
  const show = (r) => {
    frame.src = r.frame;
    total += r.reward;
    info.textContent = `step ${r.t}, reward ${total.toFixed(1)}${r.done ? " - the dream ended" : ""}`;
    if (r.done) dream = null;
  };
  const action = () => [(held.has("ArrowRight") ? 1 : 0) - (held.has("ArrowLeft") ? 1 : 0),
                        held.has("ArrowUp") ? 1 : 0, held.has("ArrowDown") ? 0.8 : 0];
  const tick = async () => {
    if (!dream || busy) return;
    busy = true;
    try {
      show(await post("/api/dream/step", { dream, action: action(), tau: Number(tau.value) }));
    } catch {
      dream = null;
    } finally {
      busy = false;
    }
  };
  const keys = (e) => {
    if (!e.key.startsWith("Arrow")) return;
    e.preventDefault();
    if (e.type === "keydown") held.add(e.key); else held.delete(e.key);
  };
  document.addEventListener("keydown", keys);
  document.addEventListener("keyup", keys);
  const timer = setInterval(tick, 100);
  const strip = el("img", { id: "strip", class: "pixelated", alt: "real, V, dream",
                            style: "width: 576px" });
  const stripInfo = el("p", { id: "strip-info", class: "muted" });
  const compare = el("button", { class: "quiet", id: "compare", onclick: async () => {
    compare.disabled = true;
    stripInfo.textContent = "playing the real game...";
    try {
      const r = await post("/api/worldmodel", { run, seed: Math.floor(Math.random() * 1e6),
                                                 steps: 150, tau: Number(tau.value) });
      strip.src = r.gif;
      stripInfo.textContent = `left: the real game (random actions, return ${r.real_return}); `
        + "middle: V's reconstruction; right: M's dream of the same actions"
        + (r.dream_ended_at ? `, which ended at step ${r.dream_ended_at}` : "");
    } catch {
      stripInfo.textContent = "";
    } finally {
      compare.disabled = false;
    }
  } }, "Real game, V and dream side by side");
  root.append(el("div", { class: "row" }, compare), stripInfo, strip, el("h2", {}, "Drive in the dream"));
  root.append(el("p", { class: "muted" }, "Drive inside the world model: ← → steer, ↑ gas, ↓ brake. ",
                  "Nothing here is the real game: M dreams each frame and V draws it."),
              el("div", { class: "row" }, el("button", { id: "start", onclick: start }, "Start a dream"), tau, tauText),
              frame, info);
  return () => {
    clearInterval(timer);
    document.removeEventListener("keydown", keys);
    document.removeEventListener("keyup", keys);
  };
}
