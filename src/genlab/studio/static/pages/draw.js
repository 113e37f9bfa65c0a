// Draw a digit: an MNIST classifier's probabilities, or a latent model's reconstruction and
// the training images whose codes lie nearest.
import { el, get, pickRun, post } from "../api.js";
import { probabilityBars, sketch } from "./sketch.js";

export async function drawPage(root, run) {
  if (!run) return pickRun(root, "draw", "Draw", "Train the MNIST classifier or a VAE first.");
  const detail = await get("/api/run", { run });
  const result = el("div", { id: "result" });
  const took = el("span", { class: "muted", id: "draw-ms" });
  const pad = sketch({ id: "pad", onStroke: () => ask() });
  async function ask() {
    const r = await post("/api/draw", { run, drawing: pad.pixels() });
    if (detail.model === "classifier") {
      took.textContent = `${r.ms} ms`;
      result.replaceChildren(el("p", {}, "It sees a ", el("strong", { id: "label" }, String(r.label))),
                             probabilityBars(r.probabilities));
    } else {
      result.replaceChildren(
        el("figure", {}, el("img", { src: r.reconstruction, class: "pixelated", id: "reconstruction",
                                     style: "width: 112px" }),
           el("figcaption", {}, "reconstruction")),
        el("figure", {}, el("img", { src: r.nearest, class: "pixelated", id: "nearest",
                                     style: "height: 56px" }),
           el("figcaption", {}, "nearest test images in latent space")));
    }
  }
  root.append(el("h1", {}, `Draw: ${run}`),
    el("p", { class: "muted" }, detail.model === "classifier"
      ? "Draw a digit; the classifier answers when you lift the pen."
      : `Draw a digit; the ${detail.model} encodes it, decodes it, and finds its neighbours.`),
    el("div", { class: "row" }, pad.canvas,
       el("div", {}, result, took,
          el("p", {}, el("button", { class: "quiet", onclick: () => { pad.clear(); result.replaceChildren(); } },
                         "Clear")))));
}
