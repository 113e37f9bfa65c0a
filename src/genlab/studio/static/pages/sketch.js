// A square canvas to draw on with a mouse, pen or finger (pointer events), read back as a
// 28x28 grid of ink in [0, 1] (the browser scales it down; genlab resizes it again anyway).
import { el } from "../api.js";

export const SIDE = 28;

export function sketch({ size = 224, width = 16, onStroke = null, id = null } = {}) {
  const canvas = el("canvas", { width: size, height: size, class: "sketch", id });
  const ctx = canvas.getContext("2d");
  let drawing = false;
  let inked = false;
  const clear = () => {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, size, size);
    inked = false;
  };
  const at = (e) => {
    const box = canvas.getBoundingClientRect();
    return [(e.clientX - box.left) * (size / box.width), (e.clientY - box.top) * (size / box.height)];
  };
  canvas.addEventListener("pointerdown", (e) => {
    drawing = true;
    canvas.setPointerCapture?.(e.pointerId);
    ctx.beginPath();
    ctx.moveTo(...at(e));
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    ctx.lineTo(...at(e));
    ctx.strokeStyle = "#000";
    ctx.lineWidth = width;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.stroke();
    inked = true;
  });
  const end = () => {
    if (!drawing) return;
    drawing = false;
    if (inked && onStroke) onStroke();
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointerleave", end);
  clear();
  return {
    canvas,
    clear,
    get inked() { return inked; },
    // (28, 28) rows of ink in [0, 1]
    pixels() {
      const small = document.createElement("canvas");
      small.width = small.height = SIDE;
      const s = small.getContext("2d");
      s.drawImage(canvas, 0, 0, SIDE, SIDE);
      const data = s.getImageData(0, 0, SIDE, SIDE).data;
      return Array.from({ length: SIDE }, (_, y) => Array.from({ length: SIDE }, (_, x) =>
        Math.round((1 - data[4 * (y * SIDE + x)] / 255) * 1000) / 1000));
    },
  };
}

export function probabilityBars(probs, names = null) {
  return el("div", { class: "bars" }, probs.map((p, i) => [
    el("span", {}, names ? names[i] : String(i)),
    el("div", {}, el("div", { class: "bar", style: `width: ${Math.round(100 * p)}%` })),
    el("span", { class: "muted" }, `${(100 * p).toFixed(1)}%`),
  ]));
}
