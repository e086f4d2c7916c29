"""The explorer's web app: a JSON API over a runs folder and the static page that uses it.

Every route only reads. Runs and files are named by paths relative to the runs folder and
resolved by :func:`attnlab.explorer.paths.resolve_inside`; anything outside is a 404. With a
token (the server sets one whenever it listens beyond the loopback interface) every API request
must carry it, as the ``X-Attnlab-Token`` header or a ``token`` query parameter; the page and its
scripts, which hold no data, load without it and show the API's refusal.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
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
    picture: str = Field(max_length=8 * 1024 * 1024)  # base64, or a data URL (what FileReader gives)
    method: str | None = None


class JobRequest(BaseModel):
    kind: Literal["finetune", "explain"]
    id: str
    steps: int = Field(default=300, ge=1, le=MAX_FINETUNE_STEPS)  # finetune
    limit: int = Field(default=100, ge=1, le=MAX_EXPLAINED)  # explain: test examples


def create_app(root: Path, *, token: str | None = None) -> FastAPI:
    """The app serving the runs under ``root`` (which must exist)."""
    if not root.is_dir():
        raise RunDirError(f"no runs folder at {root}")
    index, scalars, views, edits = RunIndex(root), ScalarCache(), ViewCache(), editing.EditCache()
    jobs = Jobs(index.root)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        jobs.stop_all()

    app = FastAPI(
        title="attnlab explorer", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )

    @app.middleware("http")
    async def require_token(request: Request, call_next: Any) -> Response:
        if token is not None and request.url.path.startswith("/api/"):  # the page itself holds no data
            given = request.headers.get(TOKEN_HEADER) or request.query_params.get("token") or ""
            if not secrets.compare_digest(given.encode(), token.encode()):
                return JSONResponse(
                    {"detail": "this explorer needs its token (printed when it started)"}, 401
                )
        response: Response = await call_next(request)
        return response

    def run_folder(run_id: str) -> Path:
        try:
            folder = resolve_inside(index.root, run_id)
        except OutsideRunsError as exc:
            raise HTTPException(404, str(exc)) from None
        if not (folder / "run.json").is_file():
            raise HTTPException(404, f"no run {run_id!r} in the runs folder")
        return folder

    def answer(call: Callable[[], T]) -> T:
        """``call()``, with a user error (a map that does not fit, an example not there) as a 422."""
        try:
            return call()
        except AttnlabError as exc:
            raise HTTPException(422, " ".join(str(exc).split())) from None

    @app.get("/api/runs")
    def runs() -> dict[str, Any]:
        return {"root": str(index.root), "runs": [row.to_json() for row in index.runs()]}

    @app.get("/api/run")
    def run(id: str) -> dict[str, Any]:
        folder = run_folder(id)
        summary = summarise(index.root, folder)
        config = folder / "config.yaml"
        try:
            metrics = read_metrics(folder / "metrics.json")
        except RunDirError:
            metrics = {}
        checkpoints = sorted((folder / "checkpoints").glob("*.ckpt")) + sorted(folder.glob("*.safetensors"))
        return {
            "summary": summary.to_json(),
            "config": config.read_text(errors="replace") if config.is_file() else "",
            "metrics": metrics,
            "figures": report_figures(folder),
            "files": [
                {"path": p.relative_to(folder).as_posix(), "bytes": p.stat().st_size} for p in checkpoints
            ],
        }

    @app.get("/api/curves")
    def curves(id: str) -> dict[str, list[tuple[int, float]]]:
        return scalars.curves(run_folder(id))

    @app.get("/api/view")
    def view(id: str, index: int = 0, method: str | None = None) -> dict[str, Any]:
        """One test example: input, prediction and attention maps (:mod:`attnlab.explorer.viewers`)."""
        folder = run_folder(id)
        return answer(lambda: views.view(folder, index, method))

    @app.post("/api/view/upload")
    def view_upload(body: Upload) -> dict[str, Any]:
        """A picture someone brought, made an input as the run's test images are made."""
        folder = run_folder(body.id)
        encoded = body.picture.partition(",")[2] if body.picture.startswith("data:") else body.picture
        try:
            picture = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise HTTPException(
                422, "the upload is not base64 (send the file's bytes, base64 encoded)"
            ) from None
        return answer(lambda: views.view_upload(folder, picture, body.method))

    def edit_session(run_id: str) -> editing.Editing:
        folder = run_folder(run_id)
        return answer(lambda: edits.get(folder))

    @app.get("/api/edit")
    def edit(id: str, index: int = 0) -> dict[str, Any]:
        """An ABN run's exported example: picture, saved map, the model's and the edited prediction."""
        session = edit_session(id)
        return answer(lambda: editing.example(session, index))

    @app.post("/api/edit/predict")
    def edit_predict(body: EditedMap) -> dict[str, Any]:
        session = edit_session(body.id)
        return {"edited": answer(lambda: editing.predict(session, body.index, body.map))}

    @app.put("/api/edit/map")
    def edit_save(body: EditedMap) -> dict[str, Any]:
        session = edit_session(body.id)
        path = answer(lambda: editing.save(session, body.index, body.map))
        return {"saved": path.relative_to(index.root).as_posix()}

    @app.post("/api/jobs")
    def start_job(body: JobRequest) -> dict[str, Any]:
        """Fine-tune an ABN run on its saved maps (``attnlab abn-maps finetune``) as a new run, or
        explain a finished run's test set (``attnlab explain``)."""
        folder = run_folder(body.id)
        if body.kind == "explain":
            args = ["explain", str(folder), "--limit", str(body.limit)]
            job = jobs.start(f"explain {body.id} ({body.limit} test examples)", args, folder, None)
            return jobs.describe(job)
        session = edit_session(body.id)
        out = folder.parent / f"{folder.name}-edited-{time.strftime('%Y%m%d-%H%M%S')}"
        args = ["abn-maps", "finetune", str(folder), "--maps", str(session.maps), "--steps", str(body.steps)]
        args += ["--run-dir", str(out), "--trainer.progress_bar", "false"]
        job = jobs.start(f"fine-tune {body.id} on its edited maps", args, out, body.steps)
        return jobs.describe(job)

    @app.get("/api/jobs")
    def list_jobs() -> list[dict[str, Any]]:
        return jobs.list()

    @app.delete("/api/jobs/{job_id}")
    def cancel_job(job_id: int) -> dict[str, Any]:
        job = jobs.cancel(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return jobs.describe(job)

    @app.get("/api/file")
    def file(id: str, path: str) -> FileResponse:
        folder = run_folder(id)
        try:
            target = resolve_inside(folder, path)
        except OutsideRunsError as exc:
            raise HTTPException(404, str(exc)) from None
        if not target.is_file() or index.root not in target.parents:
            raise HTTPException(404, f"no file {path!r} in run {id!r}")
        return FileResponse(target)

    @app.get("/")
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
