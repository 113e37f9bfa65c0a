// The studio's router: #/PAGE[/RUN] shows PAGE, for RUN where the page works on one run.
import { showError } from "./api.js";
import { runsPage, runPage, trainingBadge } from "./pages/runs.js";
import { samplesPage } from "./pages/samples.js";
import { latentPage } from "./pages/latent.js";
import { drawPage } from "./pages/draw.js";
import { fewShotPage } from "./pages/fewshot.js";
import { paintPage } from "./pages/paint.js";
import { banditsPage } from "./pages/bandits.js";
import { agentsPage } from "./pages/agents.js";

const PAGES = {
  runs: runsPage, run: runPage, samples: samplesPage, latent: latentPage,
  draw: drawPage, fewshot: fewShotPage, paint: paintPage, bandits: banditsPage,
  agents: agentsPage,
};
let leave = null; // the shown page's clean-up (timers, listeners)

async function route() {
  const [page = "runs", ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const run = rest.length ? decodeURIComponent(rest.join("/")) : null;
  if (leave) leave();
  leave = null;
  showError("");
  const root = document.getElementById("page");
  root.replaceChildren();
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.page === page || (page === "run" && a.dataset.page === "runs"));
  }
  const show = PAGES[page];
  if (!show) {
    showError(`no page '${page}'`);
    return;
  }
  try {
    leave = (await show(root, run)) || null;
  } catch (e) {
    console.error(e); // the error line already says what went wrong
  }
}

window.addEventListener("hashchange", route);
route();
trainingBadge(document.getElementById("training"));
