"""The explorer's web app: a JSON API over a runs folder and the static page that uses it.

Runs and files are named by paths relative to the runs folder and resolved by
:func:`attnlab.explorer.paths.resolve_inside`; anything outside is a 404. The routes read run
folders; the only writes are an ABN run's edited maps (its ``edited_maps/``) and the runs and
explanations that jobs make. With a token (the server sets one whenever it listens beyond the
loopback interface) every API request must carry it, as the ``X-Attnlab-Token`` header or a
``token`` query parameter; the page and its scripts, which hold no data, load without it and
show the API's refusal.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from attnlab.errors import AttnlabError, RunDirError
from attnlab.explorer import editing
from attnlab.explorer.index import RunIndex, read_metrics, report_figures, summarise
from attnlab.explorer.jobs import Jobs
from attnlab.explorer.paths import OutsideRunsError, resolve_inside
from attnlab.explorer.scalars import ScalarCache
from attnlab.explorer.viewers import ViewCache

STATIC = Path(__file__).parent / "static"
TOKEN_HEADER = "X-Attnlab-Token"
MAX_FINETUNE_STEPS = 100_000
MAX_EXPLAINED = 10_000
T = TypeVar("T")


class EditedMap(BaseModel):
    id: str
    index: int
    map: list[float] = Field(max_length=1024 * 1024)  # H * W values, row by row


class Upload(BaseModel):
    id: str
    file: str = Field(max_length=8 * 1024 * 1024)  # base64, or a data URL (what FileReader gives)
    name: str = Field(default="upload.png", max_length=255)  # the file's name: its suffix says its type
    method: str | None = None


class JobRequest(BaseModel):
    kind: Literal["finetune", "explain"]
    id: str
    steps: int = Field(default=300, ge=1, le=MAX_FINETUNE_STEPS)  # finetune
    limit: int = Field(default=100, ge=1, le=MAX_EXPLAINED)  # explain: test examples


def answer(call: Callable[[], T]) -> T:
    """``call()``, with a user error (a map that does not fit, an example not there) as a 422."""
    try:
        return call()
    except AttnlabError as exc:
        raise HTTPException(422, " ".join(str(exc).split())) from None


@dataclass
class Explorer:
    """What the routes share: the runs folder and its caches, and the jobs."""

    root: Path
    table: RunIndex = field(init=False)
    scalars: ScalarCache = field(default_factory=ScalarCache)
    views: ViewCache = field(default_factory=ViewCache)
    edits: editing.EditCache = field(default_factory=editing.EditCache)
    jobs: Jobs = field(init=False)

    def __post_init__(self) -> None:
        self.table = RunIndex(self.root)
        self.root = self.table.root  # resolved
        self.jobs = Jobs(self.root)

    def run_folder(self, run_id: str) -> Path:
        """The folder of run ``run_id``, or a 404 (outside the runs folder, or no run there)."""
        try:
            folder = resolve_inside(self.root, run_id)
        except OutsideRunsError as exc:
            raise HTTPException(404, str(exc)) from None
        if not (folder / "run.json").is_file():
            raise HTTPException(404, f"no run {run_id!r} in the runs folder")
        return folder

    def edit_session(self, run_id: str) -> editing.Editing:
        folder = self.run_folder(run_id)
        return answer(lambda: self.edits.get(folder))


def create_app(root: Path, *, token: str | None = None) -> FastAPI:
    """The app serving the runs under ``root`` (which must exist)."""
    if not root.is_dir():
        raise RunDirError(f"no runs folder at {root}")
    explorer = Explorer(root)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        explorer.jobs.stop_all()

    app = FastAPI(
        title="attnlab explorer", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    _require_token(app, token)
    _run_routes(app, explorer)
    _attention_routes(app, explorer)
    _edit_routes(app, explorer)
    _job_routes(app, explorer)

    @app.get("/")
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _require_token(app: FastAPI, token: str | None) -> None:
    @app.middleware("http")
    async def check(request: Request, call_next: Any) -> Response:
        if token is not None and request.url.path.startswith("/api/"):  # the page itself holds no data
            given = request.headers.get(TOKEN_HEADER) or request.query_params.get("token") or ""
            if not secrets.compare_digest(given.encode(), token.encode()):
                detail = "this explorer needs its token (printed when it started)"
                return JSONResponse({"detail": detail}, 401)
        response: Response = await call_next(request)
        return response


def _run_routes(app: FastAPI, ex: Explorer) -> None:
    """The runs table, one run's summary, metrics, figures and files, its curves, its files."""

    @app.get("/api/runs")
    def runs() -> dict[str, Any]:
        return {"root": str(ex.root), "runs": [row.to_json() for row in ex.table.runs()]}

    @app.get("/api/run")
    def run(id: str) -> dict[str, Any]:
        folder = ex.run_folder(id)
        config = folder / "config.yaml"
        try:
            metrics = read_metrics(folder / "metrics.json")
        except RunDirError:
            metrics = {}
        weights = sorted((folder / "checkpoints").glob("*.ckpt")) + sorted(folder.glob("*.safetensors"))
        return {
            "summary": summarise(ex.root, folder).to_json(),
            "config": config.read_text(errors="replace") if config.is_file() else "",
            "metrics": metrics,
            "figures": report_figures(folder),
            "files": [{"path": p.relative_to(folder).as_posix(), "bytes": p.stat().st_size} for p in weights],
        }

    @app.get("/api/curves")
    def curves(id: str) -> dict[str, list[tuple[int, float]]]:
        return ex.scalars.curves(ex.run_folder(id))

    @app.get("/api/file")
    def file(id: str, path: str) -> FileResponse:
        folder = ex.run_folder(id)
        try:
            target = resolve_inside(folder, path)
        except OutsideRunsError as exc:
            raise HTTPException(404, str(exc)) from None
        if not target.is_file():
            raise HTTPException(404, f"no file {path!r} in run {id!r}")
        return FileResponse(target)


def _attention_routes(app: FastAPI, ex: Explorer) -> None:
    """A test example's input, prediction and attention (:mod:`attnlab.explorer.viewers`), or an
    uploaded picture's."""

    @app.get("/api/view")
    def view(id: str, index: int = 0, method: str | None = None) -> dict[str, Any]:
        folder = ex.run_folder(id)
        return answer(lambda: ex.views.view(folder, index, method))

    @app.post("/api/view/upload")
    def view_upload(body: Upload) -> dict[str, Any]:
        folder = ex.run_folder(body.id)
        encoded = body.file.partition(",")[2] if body.file.startswith("data:") else body.file
        try:
            data = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise HTTPException(
                422, "the upload is not base64 (send the file's bytes, base64 encoded)"
            ) from None
        return answer(lambda: ex.views.view_upload(folder, body.name, data, body.method))


def _edit_routes(app: FastAPI, ex: Explorer) -> None:
    """Editing an ABN run's maps (:mod:`attnlab.explorer.editing`)."""

    @app.get("/api/edit")
    def edit(id: str, index: int = 0) -> dict[str, Any]:
        """An exported example: picture, saved map, the model's and the edited prediction."""
        session = ex.edit_session(id)
        return answer(lambda: editing.example(session, index))

    @app.post("/api/edit/predict")
    def edit_predict(body: EditedMap) -> dict[str, Any]:
        session = ex.edit_session(body.id)
        return {"edited": answer(lambda: editing.predict(session, body.index, body.map))}

    @app.put("/api/edit/map")
    def edit_save(body: EditedMap) -> dict[str, Any]:
        session = ex.edit_session(body.id)
        path = answer(lambda: editing.save(session, body.index, body.map))
        return {"saved": path.relative_to(ex.root).as_posix()}


def _job_routes(app: FastAPI, ex: Explorer) -> None:
    """Background jobs (:mod:`attnlab.explorer.jobs`): start, list, cancel."""

    @app.post("/api/jobs")
    def start_job(body: JobRequest) -> dict[str, Any]:
        """Fine-tune an ABN run on its saved maps (``attnlab abn-maps finetune``) as a new run, or
        explain a finished run's test set (``attnlab explain``)."""
        folder = ex.run_folder(body.id)
        if body.kind == "explain":
            args = ["explain", str(folder), "--limit", str(body.limit)]
            return ex.jobs.describe(
                ex.jobs.start(f"explain {body.id} ({body.limit} test examples)", args, folder, None)
            )
        session = ex.edit_session(body.id)
        out = folder.parent / f"{folder.name}-edited-{time.strftime('%Y%m%d-%H%M%S')}"
        args = ["abn-maps", "finetune", str(folder), "--maps", str(session.maps), "--steps", str(body.steps)]
        args += ["--run-dir", str(out), "--trainer.progress_bar", "false"]
        return ex.jobs.describe(
            ex.jobs.start(f"fine-tune {body.id} on its edited maps", args, out, body.steps)
        )

    @app.get("/api/jobs")
    def list_jobs() -> list[dict[str, Any]]:
        return ex.jobs.list()

    @app.delete("/api/jobs/{job_id}")
    def cancel_job(job_id: int) -> dict[str, Any]:
        job = ex.jobs.cancel(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return ex.jobs.describe(job)
