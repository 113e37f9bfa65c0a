"""The studio's speed, measured through its real stack: uvicorn on loopback, HTTP requests, and
Debian's chromium driven by Playwright for the page itself.

    python benchmarks/studio.py --runs runs/studio --vae vae-mnist-5min --maml maml-5w1s-12min \
        --spiral spiral-l2-10min [--repeats 20] [--screenshots docs/images/studio]

Prints one JSON line: milliseconds (median and 90th percentile over `--repeats`, after one
warm-up) for the runs page's first contentful paint and until its table shows, a VAE sample
grid of 64, one latent-slider frame, a few-shot adaptation to 5 new Omniglot characters (one
drawing each) with one query classified, and a SPIRAL painting; each request's round trip and
the model time the server reports. The studio's bar: a slider frame under 200 ms for the VAE.
`--screenshots DIR` also writes a PNG of each page (for docs/studio.md and the README).
`--fresh` also times a fresh studio: an empty runs folder, a click on "VAE on MNIST, 1
minute", then seconds until the first curve point, the first checkpoint's samples, the end.
Runs are named relative to `--runs`; a run not given is skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from genlab.meta.tasks import fewshot_data
from genlab.studio.app import create_app

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def serve(runs: Path) -> tuple[str, uvicorn.Server]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(runs, "127.0.0.1", port), host="127.0.0.1",
                                           port=port, log_level="error"))  # fmt: skip
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def spread(times: list[float]) -> dict:
    """Median and 90th percentile, milliseconds."""
    times = sorted(times)
    return {"median_ms": round(statistics.median(times), 1),
            "p90_ms": round(times[min(len(times) - 1, int(0.9 * len(times)))], 1)}  # fmt: skip


def timed_posts(client: httpx.Client, path: str, body: dict, repeats: int, key: str = "ms"):
    """Round trip and the server's own model time over `repeats` requests, after a warm-up
    (the first request also loads the run: reported apart as `cold_ms`)."""
    t = time.perf_counter()
    first = client.post(path, json=body)
    first.raise_for_status()
    cold = 1000 * (time.perf_counter() - t)
    trips, model = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        r = client.post(path, json=body)
        r.raise_for_status()
        trips.append(1000 * (time.perf_counter() - t))
        model.append(r.json()[key])
    return {"round_trip": spread(trips), "model": spread(model), "cold_ms": round(cold, 1)}


def page_paint(browser, url: str, repeats: int) -> dict:
    paint, table = [], []
    for _ in range(repeats):
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.goto(f"{url}/#/runs")
        page.locator("tr[data-run]").first.wait_for()
        ms = page.evaluate("[performance.getEntriesByName('first-contentful-paint')[0]?.startTime,"
                           " performance.now()]")  # fmt: skip
        paint.append(ms[0])
        table.append(ms[1])
        context.close()
    return {"first_contentful_paint": spread(paint), "table_shown": spread(table)}


def scribble(page, selector: str, points) -> None:
    box = page.locator(selector).bounding_box()
    at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for x, y in at[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


SEVEN = [(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]
SYMBOLS = [[(0.5, 0.1), (0.5, 0.9)], [(0.1, 0.5), (0.9, 0.5)], [(0.1, 0.1), (0.9, 0.9)],
           [(0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8), (0.2, 0.2)],
           [(0.5, 0.1), (0.1, 0.9), (0.9, 0.9), (0.5, 0.1)]]  # fmt: skip


def screenshots(browser, url: str, runs: dict, out: Path) -> list[str]:
    """A PNG of each page, doing what a user would: sample, draw, adapt, paint."""
    out.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1200, "height": 860})
    page.set_default_timeout(60_000)
    written = []

    def shot(name: str, full: bool = False):
        page.wait_for_timeout(400)
        page.screenshot(path=str(out / f"{name}.png"), full_page=full)
        written.append(str(out / f"{name}.png"))

    page.goto(f"{url}/#/runs")
    page.locator("tr[data-run]").first.wait_for()
    shot("runs")
    if runs.get("vae"):
        page.goto(f"{url}/#/run/{runs['vae']}")
        page.wait_for_function("document.querySelector('#curves')?.naturalWidth > 0")
        shot("run")
        page.goto(f"{url}/#/samples/{runs['vae']}")
        page.fill("#n", "64")
        page.click("#sample")
        page.wait_for_function("document.querySelector('#grid')?.naturalWidth > 0")
        shot("samples")
        page.goto(f"{url}/#/latent/{runs['vae']}")
        page.wait_for_function("document.querySelector('#plane')?.src?.startsWith('data:')")
        shot("latent")
    if runs.get("classifier"):
        page.goto(f"{url}/#/draw/{runs['classifier']}")
        if runs.get("vae"):
            page.locator("#second").select_option(runs["vae"])
        scribble(page, "#pad", SEVEN)
        page.locator("#result .label").wait_for()
        page.wait_for_timeout(1500)
        shot("draw")
    if runs.get("maml"):
        page.goto(f"{url}/#/fewshot/{runs['maml']}")
        for i, symbol in enumerate(SYMBOLS):
            scribble(page, "#pad", symbol)
            page.click(f"button[data-add='{i}']")
        scribble(page, "#pad", [(0.15, 0.15), (0.85, 0.8)])
        page.click("#classify")
        page.locator("#label").wait_for()
        shot("fewshot")
    if runs.get("spiral"):
        page.goto(f"{url}/#/paint/{runs['spiral']}")
        scribble(page, "#pad", SEVEN)
        page.click("#paint")
        page.wait_for_function("!/stroke [0-9]+ of/.test(document.querySelector('#paint-info')"
                               ".textContent) ? false : Number(document.querySelector('#canvas')"
                               ".dataset.stroke) >= 19")  # fmt: skip
        shot("paint")
    for kind in ("bandits", "agents"):
        if runs.get(kind):
            page.goto(f"{url}/#/{kind}/{runs[kind]}")
            page.wait_for_timeout(1500)
            if kind == "bandits":
                for t in range(12):
                    page.click(f"button[data-arm='{t % 3}']")
                    page.wait_for_timeout(150)
            else:
                page.click("#play")
                page.wait_for_function("document.querySelector('#episode').naturalWidth > 0")
            shot(kind)
    page.close()
    return written


def fresh_start(browser) -> dict:
    """Seconds from the click on the 1-minute VAE preset in an empty studio to its first
    metrics row on the page, its first samples, and its end."""
    with tempfile.TemporaryDirectory() as root:
        url, server = serve(Path(root))
        page = browser.new_page()
        page.set_default_timeout(180_000)
        t0 = time.perf_counter()
        page.goto(f"{url}/#/runs")
        page.click("button[data-preset='vae-1min']")
        page.wait_for_function("/running, step [1-9]/.test(document.querySelector('#train-state')"
                               "?.textContent || '')")  # fmt: skip
        curve = time.perf_counter() - t0
        page.click("#training a")
        page.wait_for_function("document.querySelector('#progress')?.naturalWidth > 0")
        samples = time.perf_counter() - t0
        page.wait_for_function("/finished/.test(document.querySelector('#train-state')"
                               ".textContent)")  # fmt: skip
        done = time.perf_counter() - t0
        page.close()
        server.should_exit = True
    return {"first_curve_s": round(curve, 1), "first_samples_s": round(samples, 1),
            "finished_s": round(done, 1)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default="runs/studio")
    for name in ("vae", "maml", "spiral", "classifier", "bandits", "agents"):
        p.add_argument(f"--{name}", help=f"the {name} run, relative to --runs")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--screenshots", help="write a PNG of each page into this folder")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--fresh", action="store_true", help="also time a fresh studio's first minute")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - a dev-extra tool

    url, server = serve(Path(args.runs))
    result = {"load": os.getloadavg()[0], "cores": os.cpu_count(), "repeats": args.repeats}
    client = httpx.Client(base_url=url, timeout=300)
    if args.vae:
        result["vae_sample_grid_64"] = timed_posts(client, "/api/sample",
                                                   {"run": args.vae, "n": 64}, args.repeats)  # fmt: skip
        result["latent_slider_frame"] = timed_posts(
            client, "/api/latent/between",
            {"run": args.vae, "a": 0, "b": 1, "t": 0.4, "path": "spherical"}, args.repeats)  # fmt: skip
    if args.maml:
        test = fewshot_data().test  # (characters, drawings, 28, 28) uint8
        ways = 5
        body = {"run": args.maml, "labels": list(range(ways)),
                "support": [(test[c, 0].float() / 255).tolist() for c in range(ways)],
                "query": [(test[0, 1].float() / 255).tolist()]}  # fmt: skip
        result["few_shot_adaptation"] = timed_posts(client, "/api/fewshot", body,
                                                    max(5, args.repeats // 4), "adapt_ms")  # fmt: skip
    if args.spiral:
        result["spiral_painting"] = timed_posts(client, "/api/paint", {"run": args.spiral, "seed": 0},
                                                max(5, args.repeats // 4))  # fmt: skip
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=FLAGS)
        result["runs_page"] = page_paint(browser, url, max(5, args.repeats // 4))
        if args.fresh:
            result["fresh_studio"] = fresh_start(browser)
        if args.screenshots:
            runs = {k: getattr(args, k) for k in ("vae", "maml", "spiral", "classifier",
                                                  "bandits", "agents")}  # fmt: skip
            result["screenshots"] = screenshots(browser, url, runs, Path(args.screenshots))
        browser.close()
    server.should_exit = True
    result["load_after"] = os.getloadavg()[0]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
