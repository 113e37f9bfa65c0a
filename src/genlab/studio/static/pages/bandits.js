// Bandits: play one Bernoulli bandit episode yourself, then see the RL² agent and Gittins'
// index policy play the same arms with the same draws.
import { el, get, pickRun, post } from "../api.js";

export async function banditsPage(root, run) {
  if (!run) return pickRun(root, "bandits", "Bandits", "Train an RL² bandit run first.");
  const detail = await get("/api/run", { run });
  let seed = Math.floor(Math.random() * 1e6);
  let pulls = [];
  let state = await post("/api/bandit", { run, seed, pulls });
  const arms = el("div", { class: "row", id: "arms" });
  const score = el("p", { id: "score" });
  const result = el("div", { id: "result" });
  const counts = () => Array.from({ length: state.arms }, (_, a) => {
    const mine = pulls.map((p, t) => [p, state.rewards[t]]).filter(([p]) => p === a);
    return [mine.filter(([, r]) => r).length, mine.length];
  });
  const show = () => {
    arms.replaceChildren(...counts().map(([wins, tries], a) =>
      el("button", { "data-arm": a, disabled: pulls.length >= state.length, onclick: () => pull(a) },
         `arm ${a + 1}: ${wins}/${tries}`)));
    score.textContent = `pull ${pulls.length} of ${state.length}: ${state.total} rewards`;
  };
  async function pull(a) {
    pulls = [...pulls, a];
    state = await post("/api/bandit", { run, seed, pulls });
    show();
    if (state.agent) finish();
  }
  function finish() {
    const row = (who, total) => el("tr", {}, el("td", {}, who), el("td", { "data-total": who }, String(total)));
    result.replaceChildren(el("h2", {}, "Same arms, same draws"),
      el("table", { style: "width: auto" }, row("you", state.total), row("RL² agent", state.agent.total),
         row("Gittins", state.gittins.total)),
      el("p", { class: "muted" }, `The arms paid with probabilities ${state.probs.join(", ")}.`));
  }
  const restart = el("button", { class: "quiet", id: "new-episode", onclick: async () => {
    seed = Math.floor(Math.random() * 1e6);
    pulls = [];
    state = await post("/api/bandit", { run, seed, pulls });
    result.replaceChildren();
    show();
  } }, "New episode");
  root.append(el("h1", {}, `Bandits: ${run}`),
    el("p", { class: "muted" }, `${detail.config.model_options.arms} arms, `
      + `${detail.config.model_options.pulls} pulls: each arm pays 1 with a hidden probability. `
      + "Pull arms to earn as much as you can; then the agent that learned to explore plays the same episode."),
    arms, score, restart, result);
  show();
}
