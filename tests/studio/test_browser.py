"""The studio in a real browser: Playwright driving Debian's chromium (headless, the system
executable, no browser download) against the app served by uvicorn on a free loopback port,
over tiny runs. Each test does what a user does: click, drag the mouse, move a slider."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from genlab.studio.app import create_app
from genlab.studio.jobs import Preset, Trainer
from studio_helpers import VAE

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright (the dev extra) is missing"
)
uvicorn = pytest.importorskip("uvicorn", reason="the studio extra is not installed")
CHROMIUM = Path(os.environ.get("GENLAB_CHROMIUM", "/usr/bin/chromium"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
TINY = Preset("tiny VAE", "vae", 2.0, ("--steps", "100000", "--log-every", "5",
                                       "--checkpoint-every", "20", *VAE))  # fmt: skip
WAIT_MS = 15_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def studio(runs_root):
    port = free_port()
    trainer = Trainer(runs_root, {"tiny": TINY})
    app = create_app(runs_root, "127.0.0.1", port, trainer=trainer)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    trainer.close()
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, studio):
    context = browser.new_context(base_url=studio, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def scribble(page, selector: str, points: list[tuple[float, float]]) -> None:
    """Draw through `points` (fractions of the element's size) with the mouse."""
    box = page.locator(selector).bounding_box()
    at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for x, y in at[1:]:
        page.mouse.move(x, y, steps=6)
    page.mouse.up()


def test_the_runs_list_shows_every_run_and_filters(page, tiny_run):
    for name in ("vae", "classifier", "spiral"):
        tiny_run(name)
    page.goto("/#/runs")
    page.locator("tr[data-run='vae']").wait_for()
    assert page.locator("tr[data-run]").count() >= 3
    page.fill("input[type=search]", "spiral")
    page.wait_for_function("document.querySelectorAll('tr[data-run]').length === 1")
    assert page.locator("tr[data-run='spiral']").is_visible()


def test_two_navigations_at_once_show_one_page(page, tiny_run):
    tiny_run("vae")
    page.goto("/#/runs")
    page.locator("tr[data-run='vae']").wait_for()
    # The hash's own event and one more, as when a click meets the runs list's refresh.
    page.evaluate("location.hash = '#/run/vae';"
                  "window.dispatchEvent(new HashChangeEvent('hashchange'))")  # fmt: skip
    page.wait_for_function("document.querySelector('#curves')?.dataset.rows !== undefined")
    time.sleep(1.0)  # both navigations have answered by now
    assert page.locator("#curves").count() == 1
    assert page.locator("h1").count() == 1


def test_a_preset_starts_its_curve_moves_and_stop_saves_it(page):
    page.goto("/#/runs")
    page.click("button[data-preset='tiny']")
    page.wait_for_function("/running, step [1-9]/.test(document.querySelector('#train-state')"
                           "?.textContent || '')")  # fmt: skip
    page.click("#training a")
    page.locator("#curves[data-rows]").wait_for()
    rows = int(page.locator("#curves").get_attribute("data-rows"))
    page.wait_for_function(f"Number(document.querySelector('#curves').dataset.rows) > {rows}")
    page.wait_for_function("document.querySelector('#curves').naturalWidth > 0")  # the SVG drew
    page.wait_for_function("document.querySelector('#progress').naturalWidth > 0")  # samples
    page.click("#stop")
    page.wait_for_function("/stopped/.test(document.querySelector('#train-state').textContent)")


def test_sampling_shows_a_grid_and_its_time(page, tiny_run):
    tiny_run("vae")
    page.goto("/#/samples/vae")
    page.fill("#n", "4")
    page.click("#sample")
    page.wait_for_function("document.querySelector('#grid')?.naturalWidth > 0")
    assert page.locator("#took").inner_text().startswith("4 in ")


def test_moving_the_latent_slider_changes_the_image(page, tiny_run):
    tiny_run("vae")
    page.goto("/#/latent/vae")
    page.wait_for_function("document.querySelector('#between')?.src?.startsWith('data:')")
    page.locator("#t").evaluate("t => { t.value = 0; t.dispatchEvent(new Event('input')); }")
    page.wait_for_function("document.querySelector('#between-ms').textContent !== ''")
    time.sleep(0.3)
    start = page.locator("#between").get_attribute("src")
    page.locator("#t").evaluate("t => { t.value = 1; t.dispatchEvent(new Event('input')); }")
    page.wait_for_function(f"document.querySelector('#between').src !== {start!r}")


def test_a_drawn_digit_gets_a_class_and_a_reconstruction_beside_it(page, tiny_run):
    tiny_run("classifier"), tiny_run("vae")
    page.goto("/#/draw/classifier")
    page.locator("#second").select_option("vae")
    scribble(page, "#pad", [(0.5, 0.15), (0.5, 0.5), (0.5, 0.85)])
    page.locator("#result .label").wait_for()
    assert page.locator("#result .label").inner_text() in [str(d) for d in range(10)]
    assert page.locator("#result .bar").count() == 10
    page.wait_for_function("document.querySelector('#second-result .nearest')?.naturalWidth > 0")
    assert page.locator("#second-result .reconstruction").is_visible()


def test_few_shot_adapts_to_drawn_symbols_and_classifies_a_new_one(page, tiny_run):
    tiny_run("maml")
    page.goto("/#/fewshot/maml")
    shapes = [[(0.5, 0.1), (0.5, 0.9)], [(0.1, 0.5), (0.9, 0.5)], [(0.1, 0.1), (0.9, 0.9)]]
    for i, shape in enumerate(shapes):
        scribble(page, "#pad", shape)
        page.click(f"button[data-add='{i}']")
    assert page.locator("#counts").inner_text().count(": 1") == 3
    scribble(page, "#pad", shapes[0])
    page.click("#classify")
    page.locator("#label").wait_for()
    assert page.locator("#label").inner_text() in ("1", "2", "3")
    assert "adapted in" in page.locator("#adapt-ms").inner_text()


def test_a_painting_is_replayed_stroke_by_stroke(page, tiny_run):
    tiny_run("spiral")
    page.goto("/#/paint/spiral")
    page.click("#paint")
    page.wait_for_function("Number(document.querySelector('#canvas').dataset.stroke) >= 3")
    assert page.locator("#downloads a").count() == 3
    page.click("#test-digit")  # a test image as the target
    page.wait_for_function("document.querySelector('#target').src.startsWith('data:image/png')")
    page.wait_for_function("/MSE/.test(document.querySelector('#paint-info').textContent)")


def test_speech_samples_play_in_audio_elements(page, tiny_run):
    tiny_run("wavenet")
    page.goto("/#/samples/wavenet")
    page.fill("#n", "2")
    page.fill("#seconds", "0.2")
    page.click("#sample")
    audio = page.locator("audio").first
    audio.wait_for()
    assert audio.get_attribute("src").startswith("data:audio/wav;base64,")
    duration = audio.evaluate("a => a.readyState >= 1 ? a.duration : new Promise(ok => "
                              "a.addEventListener('loadedmetadata', () => ok(a.duration)))")  # fmt: skip
    assert abs(duration - 0.2) < 0.01


def test_a_bandit_episode_ends_with_the_agents_scores_beside_yours(page, tiny_run):
    tiny_run("rl2")
    page.goto("/#/bandits/rl2")
    for t in range(10):
        page.click(f"button[data-arm='{t % 3}']")
        page.wait_for_function(f"document.querySelector('#score').textContent"
                               f".startsWith('pull {t + 1} ')")  # fmt: skip
    for who in ("you", "RL² agent", "Gittins"):
        assert 0 <= int(page.locator(f"td[data-total='{who}']").inner_text()) <= 10
    assert page.locator("button[data-arm='0']").is_disabled()


def test_an_agent_episode_is_replayed_with_its_return(page, tiny_run):
    tiny_run("a2c")
    page.goto("/#/agents/a2c")
    page.click("#play")
    page.wait_for_function("document.querySelector('#episode').naturalWidth > 0")
    assert "minatar:breakout: return" in page.locator("#return").inner_text()


def test_the_keyboard_drives_inside_the_dream(page, tiny_run):
    m = tiny_run("worldmodel")
    page.goto(f"/#/agents/{m}")
    page.click("#start")
    page.wait_for_function("document.querySelector('#dream').src.startsWith('data:image/png')")
    page.keyboard.down("ArrowUp")
    page.wait_for_function("/step ([3-9]|[1-9][0-9])/.test(document.querySelector('#dream-info')"
                           ".textContent) || /ended/.test(document.querySelector('#dream-info')"
                           ".textContent)")  # fmt: skip
    page.keyboard.up("ArrowUp")
    page.click("#compare")
    page.wait_for_function("document.querySelector('#strip').naturalWidth > 0")
    assert "M's dream of the same actions" in page.locator("#strip-info").inner_text()


def test_an_unknown_run_is_a_one_line_error_on_the_page(page):
    page.goto("/#/samples/nosuch")
    page.locator("#error").wait_for()
    assert page.locator("#error").inner_text().startswith("no run 'nosuch'")
