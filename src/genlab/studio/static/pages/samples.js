// Samples: a grid from any run that samples, with seed, temperature (flows, PixelCNN), class
// (class-conditional models) and, for speech, guidance, clip length and audio players.
import { el, get, pickRun, post } from "../api.js";

const TEMPERATURE = ["glow", "realnvp", "pixelcnn", "gated_pixelcnn"];
const SPEECH = ["wavenet", "parallel_wavenet", "linear_ar"];

function field(label, input) {
  return el("label", {}, `${label} `, input);
}

export async function samplesPage(root, run) {
  if (!run) return pickRun(root, "samples", "Samples", "No run here samples yet.");
  const detail = await get("/api/run", { run });
  const model = detail.model;
  const speech = SPEECH.includes(model);
  const options = detail.config.model_options || {};
  const n = el("input", { type: "number", id: "n", value: speech ? 4 : 16, min: 1,
                          max: speech ? 10 : 64, style: "width: 4rem" });
  const seed = el("input", { type: "number", id: "seed", value: 0, style: "width: 5rem" });
  const temperature = el("input", { type: "number", id: "temperature", value: speech ? 1 : 0.7,
                                    step: 0.05, min: 0, max: 2, style: "width: 4rem" });
  const label = el("input", { type: "number", id: "label", value: "", min: 0,
                              placeholder: "any", style: "width: 4rem" });
  const guidance = el("input", { type: "number", id: "guidance", value: options.guidance ?? 1,
                                 step: 0.5, min: 0, style: "width: 4rem" });
  const seconds = el("input", { type: "number", id: "seconds", step: 0.1, min: 0.05, max: 2,
                                value: Math.min(options.sample_seconds ?? 0.5, 2),
                                style: "width: 4rem" });
  const out = el("div", { id: "samples" });
  const took = el("span", { class: "muted", id: "took" });
  const button = el("button", { id: "sample" }, "Sample");
  button.addEventListener("click", async () => {
    button.disabled = true;
    took.textContent = "sampling...";
    const body = { run, n: Number(n.value), seed: Number(seed.value) };
    if (TEMPERATURE.includes(model) || speech) body.temperature = Number(temperature.value);
    if (options.conditional && label.value !== "") body.label = Number(label.value);
    if (speech) {
      body.seconds = Number(seconds.value);
      if ("guidance" in options) body.guidance = Number(guidance.value);
    }
    try {
      const r = await post("/api/sample", body);
      took.textContent = `${r.n} in ${r.ms} ms`;
      out.replaceChildren(speech ? clips(r) : el("img", { src: r.image, alt: "samples",
                                                          class: "pixelated", id: "grid" }));
    } catch {
      took.textContent = "";
    } finally {
      button.disabled = false;
    }
  });
  root.append(el("h1", {}, `Samples: ${run}`),
    el("p", { class: "muted" }, `${model} on ${detail.data}, step ${detail.step}`),
    el("div", { class: "row" }, field("n", n), field("seed", seed),
      TEMPERATURE.includes(model) || speech ? field("temperature", temperature) : null,
      options.conditional ? field("class", label) : null,
      speech && "guidance" in options ? field("guidance", guidance) : null,
      speech ? field("seconds", seconds) : null, button, took),
    out);
}

function clips(r) {
  return el("div", {},
    el("div", { class: "cards" }, r.clips.map((c) =>
      el("figure", { class: "card" }, el("figcaption", {}, c.title),
         el("audio", { controls: true, src: c.src, preload: "auto" })))),
    el("h2", {}, "Waveforms and spectrograms"), el("img", { src: r.image, alt: "spectrograms" }));
}
