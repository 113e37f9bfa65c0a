// Few-shot: draw 1-5 examples of each of N new symbols; the meta-learned run adapts to them
// (genlab.meta.live) and classifies the next drawing, with the adaptation time shown.
import { el, get, pickRun, post } from "../api.js";
import { probabilityBars, sketch } from "./sketch.js";

export async function fewShotPage(root, run) {
  if (!run) return pickRun(root, "fewshot", "Few-shot", "Train a MAML, FOMAML or Reptile run first.");
  const detail = await get("/api/run", { run });
  const ways = detail.config.model_options.ways;
  const examples = Array.from({ length: ways }, () => []); // per class: drawings
  const counts = el("div", { class: "row", id: "counts" });
  const showCounts = () => counts.replaceChildren(...examples.map((e, i) =>
    el("span", { class: "card", "data-class": i }, `symbol ${i + 1}: ${e.length}`)));
  const pad = sketch({ id: "pad", size: 196, width: 12 });
  const buttons = examples.map((_, i) => el("button", { class: "quiet", "data-add": i, onclick: () => {
    if (!pad.inked) return;
    examples[i].push(pad.pixels());
    pad.clear();
    showCounts();
  } }, `Add as symbol ${i + 1}`));
  const result = el("div", { id: "result" });
  const classify = el("button", { id: "classify", onclick: async () => {
    if (examples.some((e) => !e.length)) {
      result.replaceChildren(el("p", {}, `Draw at least one example of each of the ${ways} symbols first.`));
      return;
    }
    const support = examples.flat();
    const labels = examples.flatMap((e, i) => e.map(() => i));
    const r = await post("/api/fewshot", { run, support, labels, query: [pad.pixels()] });
    result.replaceChildren(
      el("p", {}, "It is symbol ", el("strong", { id: "label" }, String(r.labels[0] + 1)),
         el("span", { class: "muted", id: "adapt-ms" }, ` (adapted in ${r.adapt_ms} ms, answered in ${r.query_ms} ms)`)),
      probabilityBars(r.probabilities[0], examples.map((_, i) => String(i + 1))));
  } }, "Classify this drawing");
  showCounts();
  root.append(el("h1", {}, `Few-shot: ${run}`),
    el("p", { class: "muted" }, `${detail.model}, ${ways}-way: draw a symbol and add it to a class; `
      + "when every class has an example, draw a new one and classify it."),
    counts,
    el("div", { class: "row" }, pad.canvas, el("div", {}, ...buttons.map((b) => el("p", {}, b)),
      el("p", {}, classify), el("p", {}, el("button", { class: "quiet", onclick: () => pad.clear() }, "Clear")))),
    result);
}
