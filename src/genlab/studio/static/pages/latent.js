// The latent explorer: slide between two test images (linear or spherical), pan a grid over
// the plane of the codes' two main directions, and add a class-to-class attribute vector.
import { el, get, pickRun, post } from "../api.js";

export async function latentPage(root, run) {
  if (!run) return pickRun(root, "latent", "Latent space", "No run here has a latent space yet.");
  const thumbs = await get("/api/latent/images", { run });
  const picked = [0, 1];
  const side = thumbs.count;
  const strip = el("img", { src: thumbs.image, class: "pixelated thumbs", id: "thumbs",
                            alt: "test images: click to pick ends", style: `width: ${side * 40}px` });
  const ends = el("span", { id: "ends" });
  const showEnds = () => { ends.textContent = `from image ${picked[0]} (${thumbs.labels[picked[0]]}) `
    + `to image ${picked[1]} (${thumbs.labels[picked[1]]})`; };
  let next = 0;
  strip.addEventListener("click", (e) => {
    const i = Math.min(side - 1, Math.floor((e.offsetX / strip.clientWidth) * side));
    picked[next] = i;
    next = 1 - next;
    showEnds();
    frame();
    plane();
  });
  showEnds();

  // 1. between two images
  const t = el("input", { type: "range", id: "t", min: 0, max: 1, step: 0.02, value: 0.5 });
  const path = el("select", { id: "path" }, el("option", {}, "linear"), el("option", {}, "spherical"));
  const between = el("img", { id: "between", class: "pixelated big", alt: "interpolation" });
  const betweenMs = el("span", { class: "muted", id: "between-ms" });
  let pending = false;
  let again = false;
  async function frame() {
    if (pending) { again = true; return; } // one frame in flight; the last slider value wins
    pending = true;
    try {
      const r = await post("/api/latent/between", { run, a: picked[0], b: picked[1],
                                                     t: Number(t.value), path: path.value });
      between.src = r.image;
      betweenMs.textContent = `${r.ms} ms`;
    } finally {
      pending = false;
      if (again) { again = false; frame(); }
    }
  }
  t.addEventListener("input", frame);
  path.addEventListener("change", frame);

  // 2. a plane through latent space, panned with buttons or the arrow keys
  const pan = { x: 0, y: 0 };
  const grid = el("img", { id: "plane", class: "pixelated", alt: "latent plane",
                           style: "width: 420px" });
  const where = el("span", { class: "muted", id: "plane-at" });
  async function plane() {
    const r = await post("/api/latent/grid", { run, center: picked[0], x: pan.x, y: pan.y,
                                               size: 7, span: 4 });
    grid.src = r.image;
    where.textContent = `centre (${pan.x.toFixed(1)}, ${pan.y.toFixed(1)}) s.d. from image `
      + `${picked[0]}; ${r.ms} ms`;
  }
  const move = (dx, dy) => () => { pan.x += dx; pan.y += dy; plane(); };
  const keys = (e) => {
    const d = { ArrowLeft: [-0.5, 0], ArrowRight: [0.5, 0], ArrowUp: [0, 0.5], ArrowDown: [0, -0.5] }[e.key];
    if (d && e.target === document.body) { e.preventDefault(); move(...d)(); }
  };
  document.addEventListener("keydown", keys);

  // 3. attribute vectors
  const classes = thumbs.classes.map((c, i) => el("option", { value: i }, c));
  const src = el("select", { id: "src" }, classes.map((o) => o.cloneNode(true)));
  const dst = el("select", { id: "dst" }, classes.map((o) => o.cloneNode(true)));
  src.value = "7";
  dst.value = "2";
  const strength = el("input", { type: "range", id: "strength", min: -2, max: 2, step: 0.1, value: 1 });
  const moved = el("img", { id: "attribute", class: "pixelated big", alt: "attribute" });
  const attribute = async () => {
    const r = await post("/api/latent/attribute", { run, image: picked[0], src: Number(src.value),
                                                    dst: Number(dst.value), strength: Number(strength.value) });
    moved.src = r.image;
  };
  for (const c of [src, dst, strength]) c.addEventListener("input", attribute);

  root.append(el("h1", {}, `Latent space: ${run}`),
    el("p", { class: "muted" }, "Click two test images (first, then second) to set the ends."),
    strip, el("p", {}, ends),
    el("div", { class: "cards" },
      el("div", { class: "card" }, el("h2", {}, "Between the two"),
         el("div", { class: "row" }, t, path, betweenMs), between),
      el("div", { class: "card" }, el("h2", {}, "A plane through the codes"),
         el("div", { class: "row" }, el("button", { class: "quiet", onclick: move(-0.5, 0) }, "←"),
            el("button", { class: "quiet", onclick: move(0.5, 0) }, "→"),
            el("button", { class: "quiet", onclick: move(0, 0.5) }, "↑"),
            el("button", { class: "quiet", onclick: move(0, -0.5) }, "↓"), where), grid),
      el("div", { class: "card" }, el("h2", {}, "Attribute vector"),
         el("div", { class: "row" }, "image 1 + strength × (mean ", dst, " − mean ", src, ")"),
         el("div", { class: "row" }, strength), moved)));
  await Promise.all([frame(), plane(), attribute()]);
  return () => document.removeEventListener("keydown", keys);
}
