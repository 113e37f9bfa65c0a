// Paint: a trained SPIRAL agent paints a target you draw or a test image it never saw (or, if
// unconditional, what it likes);
// the program is replayed stroke by stroke and offered as JSON, SVG and G-code.
import { el, get, pickRun, post } from "../api.js";
import { sketch } from "./sketch.js";

export async function paintPage(root, run) {
  if (!run) return pickRun(root, "paint", "Paint", "Train a SPIRAL agent first.");
  const detail = await get("/api/run", { run });
  const pad = sketch({ id: "pad", size: 196, width: 14 });
  const canvas = el("img", { id: "canvas", class: "pixelated big", alt: "painting" });
  const info = el("p", { class: "muted", id: "paint-info" });
  const downloads = el("div", { class: "row", id: "downloads" });
  let timer = null;
  const stop = () => { if (timer) clearInterval(timer); timer = null; };
  const greedy = el("input", { type: "checkbox", id: "greedy" });
  const go = el("button", { id: "paint", onclick: () => paintIt({ target: pad.inked ? pad.pixels() : null }) },
                "Paint");
  const pick = el("button", { class: "quiet", id: "test-digit", onclick: () => {
    pad.clear();
    paintIt({ test_image: Math.floor(Math.random() * 10000) });
  } }, "Paint a test image");
  async function paintIt(what) {
    stop();
    const r = await post("/api/paint", { run, ...what, greedy: greedy.checked,
                                         seed: Math.floor(Math.random() * 1e6) });
    let k = 0;
    canvas.src = r.frames[0];
    canvas.dataset.stroke = "0";
    timer = setInterval(() => {
      k += 1;
      if (k >= r.frames.length) return stop();
      canvas.src = r.frames[k];
      canvas.dataset.stroke = String(k);
      info.textContent = `stroke ${k} of ${r.strokes}` + (r.mse !== undefined ? `, MSE ${r.mse.toFixed(4)}` : "");
    }, 150);
    info.textContent = `painted in ${r.ms} ms`;
    const link = (text, body, type, name) => el("a", { href: URL.createObjectURL(new Blob([body], { type })),
                                                        download: name }, text);
    downloads.replaceChildren(link("program.json", r.json, "application/json", "program.json"),
                              link("program.svg", r.svg, "image/svg+xml", "program.svg"),
                              link("program.gcode", r.gcode, "text/plain", "program.gcode"));
    if (r.target) target.src = r.target;
  }
  const target = el("img", { id: "target", class: "pixelated", alt: "", style: "width: 84px" });
  const task = (detail.config.model_options.env || "").split(",")[0];
  root.append(el("h1", {}, `Paint: ${run}`),
    el("p", { class: "muted" }, task.includes("-target")
      ? `${task}: draw a target, then Paint.` : `${task}: an unconditional painter paints what it likes.`),
    el("div", { class: "row" }, pad.canvas, el("div", {}, el("p", {}, go, " ",
       el("button", { class: "quiet", onclick: () => pad.clear() }, "Clear")),
       task.includes("-target") ? el("p", {}, pick) : null,
       el("label", {}, greedy, " each head's likeliest choice (else sampled)")), canvas,
       el("figure", {}, target, el("figcaption", {}, "target"))),
    info, downloads);
  return stop;
}
