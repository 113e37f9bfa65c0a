"""The studio's web app: JSON endpoints over `Library` (runs), `Trainer` (the one training)
and `work` (the model work), and the static page that calls them.

Every error is a JSON object {"error": "one line"} with a status the page shows as is: 403 for
a path or origin refused, 404 for an unknown run or file, 409 for a busy run or a second
training, 400 for bad input, 500 for a fault in genlab (the server stays up). Endpoints that run
a model are plain `def`s, so FastAPI runs them in its worker threads and a slow one never
blocks the page.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from genlab.data.files import json_safe
from genlab.data.images import image_splits
from genlab.errors import GenlabError, RunError
from genlab.studio import work
from genlab.studio.guard import (
    Busy,
    Missing,
    Refused,
    allowed_hosts,
    host_allowed,
    origin_allowed,
)
from genlab.studio.jobs import Trainer
from genlab.studio.library import Library, Loaded
from genlab.tasks import world_models
from genlab.tasks.registry import get_model
from genlab.viz.curves import metrics_figure, svg

STATIC = Path(__file__).parent / "static"
MAX_BODY = 1_000_000  # bytes: a request larger than this is refused before it is read
SERVED = {".png": "image/png", ".gif": "image/gif", ".svg": "image/svg+xml", ".json": None,
          ".jsonl": None, ".wav": "audio/wav", ".gcode": "text/plain", ".txt": "text/plain",
          ".jpg": "image/jpeg", ".webp": "image/webp"}  # fmt: skip
# Which models each page works on (Samples: every entry that can sample, and speech).
LATENT = ("vae", "ae", "glow", "realnvp", "pixelvae")
SPEECH = ("wavenet", "parallel_wavenet", "linear_ar")
FEW_SHOT = ("maml", "fomaml", "reptile", "snail")
AGENTS = ("impala", "a2c")
M, M_IS = ("mdnrnn",), "a world model's M (mdnrnn)"
PAGES = {"latent": LATENT, "draw": (*LATENT, "classifier"), "fewshot": FEW_SHOT,
         "paint": ("spiral",), "bandits": ("rl2",), "agents": (*AGENTS, *M)}  # fmt: skip


def pages_of(model: str) -> list[str]:
    try:
        entry = get_model(model)
    except GenlabError:
        return []  # a World Models controller, an unknown model
    samples = ["samples"] if entry.can_sample or model in SPEECH else []
    return samples + [page for page, models in PAGES.items() if model in models]


# --- request bodies -------------------------------------------------------------------------------
class RunRequest(BaseModel):
    run: str = Field(max_length=500)


class SampleRequest(RunRequest):
    n: int = 16
    seed: int = 0
    temperature: float | None = None
    label: int | None = None  # class-conditional models
    guidance: float | None = None  # WaveNet
    seconds: float | None = None  # speech clip length


class BetweenRequest(RunRequest):
    a: int
    b: int
    t: float
    path: str = "linear"


class GridRequest(RunRequest):
    center: int = 0
    x: float = 0.0
    y: float = 0.0
    size: int = 7
    span: float = 4.0


class AttributeRequest(RunRequest):
    image: int
    src: int
    dst: int
    strength: float


Drawing = list[list[float]]


class DrawRequest(RunRequest):
    drawing: Drawing


class FewShotRequest(RunRequest):
    support: list[Drawing]
    labels: list[int]
    query: list[Drawing]


class PaintRequest(RunRequest):
    target: Drawing | None = None
    test_image: int | None = None  # or the target is this test image of the painter's dataset
    seed: int = 0
    greedy: bool = False  # each head's likeliest choice, else sampled (seeded)


class BanditRequest(RunRequest):
    seed: int = 0
    pulls: list[int] = Field(default_factory=list, max_length=10_000)


class EpisodeRequest(RunRequest):
    task: int = 0
    seed: int = 0


class DreamStart(RunRequest):
    tau: float = 1.15
    seed: int = 0


class DreamStep(BaseModel):
    dream: str = Field(max_length=64)
    action: list[float]
    tau: float = 1.15


class WorldModelRequest(RunRequest):
    seed: int = 0
    steps: int = 150
    tau: float = 1.15


class TrainRequest(BaseModel):
    preset: str = Field(max_length=100)


# --- the app --------------------------------------------------------------------------------------
def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message.splitlines()[0] if message else "error"}, status)


def status_of(e: GenlabError) -> int:
    return 403 if isinstance(e, Refused) else 404 if isinstance(e, Missing) else (
        409 if isinstance(e, Busy) else 400)  # fmt: skip


def create_app(
    runs: Path, host: str = "127.0.0.1", port: int = 8765, data_dir: str | None = None,
    trainer: Trainer | None = None,
) -> FastAPI:  # fmt: skip
    library = Library(Path(runs), data_dir)
    trainer = trainer or Trainer(Path(runs))
    hosts = allowed_hosts(host, port)
    app = FastAPI(title="genlab studio", docs_url=None, redoc_url=None)
    app.state.library, app.state.trainer = library, trainer

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if not host_allowed(request.headers.get("host"), hosts):
            return error(403, f"host '{request.headers.get('host')}' is not this studio's")
        if not origin_allowed(request.method, request.headers.get("origin"), hosts):
            return error(403, "cross-origin requests may not change anything here")
        if "transfer-encoding" in request.headers:  # a body of unstated length: not read
            return error(411, "send the request body with a Content-Length")
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            return error(413, f"request body over {MAX_BODY:,} bytes")
        return await call_next(request)

    @app.exception_handler(GenlabError)
    async def genlab_error(request: Request, e: GenlabError):
        return error(status_of(e), str(e))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error(400, f"{where or 'request'}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        return error(e.status_code, str(e.detail))

    @app.exception_handler(Exception)
    async def fault(request: Request, e: Exception):
        return error(500, f"internal error: {type(e).__name__}: {e}")

    # --- pages and runs ---
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/")
    def index():
        return FileResponse(STATIC / "index.html")

    @app.get("/api/runs")
    def runs_list():
        rows = library.runs()
        for row in rows:
            row["pages"] = pages_of(row.get("model", ""))
        return {"runs": json_safe(rows), "root": str(library.root)}

    @app.get("/api/runs/names")
    def runs_names():  # the runs page polls this to see a run appear: no file is read
        return {"runs": library.names()}

    @app.get("/api/pictures")
    def run_pictures(run: str):  # a run's page polls this for new pictures
        return library.pictures(run)

    @app.get("/api/run")
    def run_detail(run: str):
        detail = library.detail(run)
        detail["pages"] = pages_of(detail.get("model", ""))
        return json_safe(detail)

    @app.get("/api/file")
    def run_file(run: str, path: str):
        file = library.file(run, path)
        if file.suffix.lower() not in SERVED:
            raise Refused(f"'{path}': only pictures, audio, JSON and programs are served")
        return FileResponse(file, media_type=SERVED[file.suffix.lower()])

    @app.get("/api/metrics")
    def metrics(run: str, since: int = 0):
        rows = library.metrics(run, since)
        return {"rows": json_safe(rows), "next": since + len(rows)}

    @app.get("/api/curves.svg")
    def curves(run: str, keys: str = ""):
        rows = library.metrics(run)
        names = [k for k in keys.split(",") if k] or default_keys(rows)
        return Response(svg(metrics_figure(rows, names[:6])), media_type="image/svg+xml")

    # --- training ---
    @app.get("/api/train")
    def train_status():
        return trainer.status()

    @app.post("/api/train")
    def train_start(body: TrainRequest):
        return trainer.start(body.preset)

    @app.post("/api/train/stop")
    def train_stop():
        return trainer.stop()

    # --- model work: one heavy request per run at a time ---
    def with_run(run: str, fn: Callable[[Loaded], dict], overrides: tuple[str, ...] = (),
                 kinds: tuple[str, ...] = (), what: str = ""):  # fmt: skip
        """fn(the loaded run), holding the run; RunError "a MODEL run is not WHAT" unless
        its model is one of `kinds` (when given)."""
        with library.busy(run):
            r = library.load(run, overrides)
            if kinds and r.config["model"] not in kinds:
                raise RunError(f"a {r.config['model']} run is not {what}")
            return fn(r)

    @app.post("/api/sample")
    def sample(body: SampleRequest):
        overrides = tuple(f"{k}={v}" for k, v in (("guidance", body.guidance),
                          ("sample_seconds", body.seconds)) if v is not None)  # fmt: skip

        def go(r: Loaded):
            if r.config["model"] in SPEECH:
                return work.sample_speech(r.model, r.options, body.n, body.seed,
                                          body.temperature or 1.0)  # fmt: skip
            if not r.entry.can_sample:
                raise RunError(f"a {r.config['model']} run does not sample")
            return work.sample_images(r.model, r.options, body.n, body.seed, body.temperature,
                                      body.label)  # fmt: skip

        return with_run(body.run, go, overrides)

    def space(r: Loaded) -> work.LatentSpace:
        if r.config["model"] not in LATENT:
            raise RunError(f"a {r.config['model']} run has no latent space to explore")
        return library.extra(
            r, "space", lambda r: work.latent_space(r.model, r.options, library.data(r))
        )

    @app.get("/api/latent/images")
    def latent_images(run: str):
        return with_run(run, lambda r: {**space(r).thumbnails(), "classes": list(space(r).names)})

    @app.post("/api/latent/between")
    def latent_between(body: BetweenRequest):
        return with_run(body.run, lambda r: space(r).between(body.a, body.b, body.t, body.path))

    @app.post("/api/latent/grid")
    def latent_grid(body: GridRequest):
        return with_run(body.run, lambda r: space(r).grid(body.center, body.x, body.y,
                                                          body.size, body.span))  # fmt: skip

    @app.post("/api/latent/attribute")
    def latent_attribute(body: AttributeRequest):
        return with_run(body.run, lambda r: space(r).attribute(body.image, body.src, body.dst,
                                                               body.strength))  # fmt: skip

    @app.post("/api/draw")
    def draw(body: DrawRequest):
        picture = work.drawing(body.drawing)

        def go(r: Loaded):
            if r.config["model"] == "classifier":
                return work.classify(r.model, r.options, picture)
            if r.config["model"] not in LATENT:
                raise RunError(f"a {r.config['model']} run does not read drawings")
            train = library.extra(r, "train_space", lambda r: work.latent_space(
                r.model, r.options, library.data(r), 10_000, "train"))  # fmt: skip
            return work.reconstruct(train, r.options, picture)

        return with_run(body.run, go)

    @app.post("/api/fewshot")
    def fewshot(body: FewShotRequest):
        return with_run(body.run, lambda r: work.few_shot(r.model, body.support, body.labels,
                                                          body.query),
                        kinds=FEW_SHOT, what="a few-shot learner")  # fmt: skip

    @app.post("/api/paint")
    def paint(body: PaintRequest):
        target = work.drawing(body.target) if body.target is not None else None

        def go(r: Loaded):
            chosen = target
            if body.test_image is not None:
                chosen = work.test_image(library.extra(r, "targets", painter_targets),
                                         body.test_image)  # fmt: skip
            return work.paint(r.model, r.options, chosen, body.seed, body.greedy)

        return with_run(body.run, go, kinds=PAGES["paint"], what="a painter (SPIRAL)")

    @app.post("/api/episode")
    def episode(body: EpisodeRequest):
        return with_run(body.run, lambda r: work.episode(r.model, r.options, body.task, body.seed),
                        kinds=AGENTS, what="an IMPALA or A2C agent")  # fmt: skip

    dreams = work.Dreams()

    @app.post("/api/dream/start")
    def dream_start(body: DreamStart):
        def go(r: Loaded):
            vae, initial_z = library.extra(r, "dream", lambda r: dream_parts(r, library.data_dir))
            return dreams.start(r.model, vae, initial_z, body.tau, body.seed)

        return with_run(body.run, go, kinds=M, what=M_IS)

    @app.post("/api/worldmodel")
    def worldmodel(body: WorldModelRequest):
        def go(r: Loaded):
            vae, _ = library.extra(r, "dream", lambda r: dream_parts(r, library.data_dir))
            return work.real_v_and_dream(r.model, vae, body.seed, body.steps, body.tau)

        return with_run(body.run, go, kinds=M, what=M_IS)

    @app.post("/api/dream/step")
    def dream_step(body: DreamStep):
        return dreams.step(body.dream, body.action, body.tau)

    @app.post("/api/bandit")
    def bandit(body: BanditRequest):
        return with_run(body.run, lambda r: work.bandit(r.model, r.options, body.seed, body.pulls),
                        kinds=PAGES["bandits"], what="an RL² bandit player")  # fmt: skip

    return app


def dream_parts(r: Loaded, data_dir: str | None):
    """An M run's V and the latents of the real first frames its dreams start from (encoded
    once and cached in V's run by `load_latents`). The episodes are looked for where
    `genlab worldmodels` keeps them (DIR/data beside DIR/vae), else in the studio's data."""
    vae, _ = world_models.load_v(r.options.vae)
    beside = Path(r.options.vae).parent / "data"
    where = str(beside) if (beside / "carracing").is_dir() else data_dir
    return vae, world_models.load_latents(r.options.vae, where, False).first_latents().numpy()


def painter_targets(r: Loaded):
    """The test images of the dataset a SPIRAL run paints, (N, 28, 28) uint8 ink."""
    return image_splits(r.model.images_from).test_x[:, 0]


def default_keys(rows: list[dict]) -> list[str]:
    """The metrics worth a panel: loss first, then the other numbers a row logs (not time)."""
    keys = []
    for row in rows[-50:]:
        for k, v in row.items():
            if isinstance(v, int | float) and k not in keys and k not in SKIPPED:
                keys.append(k)
    return sorted(keys, key=lambda k: (k != "loss", k))


SKIPPED = {"step", "seconds", "time", "lr", "steps_per_second", "frames", "epoch"}
