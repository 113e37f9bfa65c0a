// Draw a digit: an MNIST classifier's probabilities, and a latent model's reconstruction with
// the training images whose codes lie nearest. The page's run answers, and a second run of the
// other kind may answer beside it.
import { el, get, pickRun, post } from "../api.js";
import { probabilityBars, sketch } from "./sketch.js";

export async function drawPage(root, run) {
  if (!run) return pickRun(root, "draw", "Draw", "Train the MNIST classifier or a VAE first.");
  const [detail, { runs }] = await Promise.all([get("/api/run", { run }), get("/api/runs")]);
  const isClassifier = (r) => r.model === "classifier";
  const others = runs.filter((r) => r.pages.includes("draw") && r.run !== run
                                    && isClassifier(r) !== isClassifier(detail));
  const second = el("select", { id: "second", "aria-label": "a second run" },
    el("option", { value: "" }, "none"), others.map((r) => el("option", { value: r.run }, r.run)));
  if (others.length) second.value = others[0].run;
  const first = el("div", { id: "result" });
  const beside = el("div", { id: "second-result" });
  const pad = sketch({ id: "pad", onStroke: () => ask() });
  async function answer(name, model, into) {
    const r = await post("/api/draw", { run: name, drawing: pad.pixels() });
    if (model === "classifier") {
      into.replaceChildren(el("h2", {}, name),
        el("p", {}, "It sees a ", el("strong", { class: "label" }, String(r.label)),
           el("span", { class: "muted" }, ` (${r.ms} ms)`)),
        probabilityBars(r.probabilities));
    } else {
      into.replaceChildren(el("h2", {}, name),
        el("figure", {}, el("img", { src: r.reconstruction, class: "pixelated reconstruction",
                                     style: "width: 112px" }), el("figcaption", {}, "reconstruction")),
        el("figure", {}, el("img", { src: r.nearest, class: "pixelated nearest", style: "height: 56px" }),
           el("figcaption", {}, "nearest training images in latent space")));
    }
  }
  async function ask() {
    const jobs = [answer(run, detail.model, first)];
    const other = others.find((r) => r.run === second.value);
    if (other) jobs.push(answer(other.run, other.model, beside));
    else beside.replaceChildren();
    await Promise.all(jobs);
  }
  root.append(el("h1", {}, `Draw: ${run}`),
    el("p", { class: "muted" }, "Draw a digit; the answers come when you lift the pen."),
    el("div", { class: "row" }, pad.canvas,
       el("div", { class: "card" }, first), el("div", { class: "card" }, beside)),
    el("div", { class: "row" }, el("button", { class: "quiet", onclick: () => {
      pad.clear(); first.replaceChildren(); beside.replaceChildren(); } }, "Clear"),
      others.length ? el("label", {}, "also ask ", second) : null));
}
