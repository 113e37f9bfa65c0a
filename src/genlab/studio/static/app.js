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
let shown = 0; // which navigation owns the page: a later one overtakes an earlier one still loading

async function route() {
  const mine = ++shown;
  const [page = "runs", ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const run = rest.length ? decodeURIComponent(rest.join("/")) : null;
  if (leave) leave();
  leave = null;
  showError("");
  // Each navigation draws into its own box: one overtaken while it awaits the server (a click and
  // the runs list's own refresh at once) draws into a box no longer shown, never beside the new page.
  const root = document.createElement("div");
  document.getElementById("page").replaceChildren(root);
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.page === page || (page === "run" && a.dataset.page === "runs"));
  }
  const show = PAGES[page];
  if (!show) {
    showError(`no page '${page}'`);
    return;
  }
  try {
    const cleanUp = (await show(root, run)) || null;
    if (mine === shown) leave = cleanUp;
    else if (cleanUp) cleanUp();
  } catch (e) {
    console.error(e); // the error line already says what went wrong
  }
}

window.addEventListener("hashchange", route);
route();
trainingBadge(document.getElementById("training"));
