"""The ASGI application of ``iuie serve`` (FastAPI on uvicorn): routes, error bodies and the page.

Routes: ``POST /v1/extract``, ``GET /v1/health``, ``GET /v1/info``, ``GET /`` (the page, from the package's
``static/`` folder, also under ``/static/``), ``/openapi.json`` and ``/docs`` (FastAPI's schema and its
viewer). Errors are JSON ``{"error": ..., "problems": [{"field", "message"}]}``: 400 for a body that is not
JSON, 422 for a wrong type, a missing or unknown field, or a value over the limits, 500 (logged) for a
failure inside the model; the server keeps serving.

:func:`create_app` takes a ``runner`` (``jobs -> results``, normally :meth:`Engine.run`) so that the page and
error handling can also be tested over a stand-in model.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from iuie.serving.batcher import Batcher
from iuie.serving.engine import ExtractionInputError, Job
from iuie.serving.schema import ErrorResponse, ExtractRequest, ExtractResponse, Limits, check

log = logging.getLogger("iuie.serve")

API_VERSION = "v1"
DEFAULT_LIMITS = Limits()
STATIC = importlib.resources.files("iuie.serving") / "static"


def _error(status: int, error: str, problems: list[dict[str, str]]) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": error, "problems": problems})


def _field(loc: Sequence[Any]) -> str:
    """pydantic's ``("body", "texts", 2)`` as ``texts[2]``."""
    out = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def create_app(
    runner: Callable[[Sequence[Job]], Sequence[Any]],
    *,
    info: Callable[[], dict[str, Any]] = dict,
    tasks: dict[str, str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    max_batch: int = 32,
    max_wait_ms: float = 5.0,
    warm_up: Callable[[], Any] | None = None,
) -> FastAPI:
    """The app over ``runner``; ``warm_up`` (compiling) runs before the first request is taken."""
    from iuie.extraction.extractor import TASKS

    tasks = dict(tasks or TASKS)
    batcher = Batcher(runner, max_batch=max_batch, max_wait_ms=max_wait_ms, cost=lambda job: len(job.texts))
    started = time.time()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if warm_up is not None:
            warm_up()
        batcher.start()
        yield
        batcher.stop()

    app = FastAPI(
        title="iuie",
        version=API_VERSION,
        description="Zero-shot NER, RE and EE with an InstructUIE checkpoint (docs/serving.md).",
        lifespan=lifespan,
    )
    app.state.batcher = batcher
    app.state.limits = limits

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"field": _field(e.get("loc", ())), "message": e.get("msg", "invalid")} for e in exc.errors()]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return _error(400, "the body is not valid JSON", [{"field": "body", "message": problems[0]["message"]}])
        return _error(422, "invalid request", problems)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request %s %s failed", request.method, request.url.path)
        return _error(500, f"internal error: {type(exc).__name__}: {exc}", [])

    @app.post(
        f"/{API_VERSION}/extract",
        response_model=ExtractResponse,
        responses={400: {"model": ErrorResponse}, 422: {"model": ErrorResponse}, 500: {"model": ErrorResponse}},
    )
    async def extract(body: ExtractRequest) -> Any:
        """Entities (ner), relations (re) or events (ee) in one or many texts, with character offsets."""
        start = time.perf_counter()
        problems = check(body, limits, tasks)
        if problems:
            return _error(422, "invalid request", problems)
        texts = (body.text,) if body.text is not None else tuple(body.texts or ())
        job = Job(
            texts=texts,
            task=body.task.strip().lower(),
            labels=tuple(label.strip() for label in body.labels),
            roles=tuple(role.strip() for role in body.roles),
            constrained=body.constrained,
        )
        try:
            results = await batcher.submit(job)
        except ExtractionInputError as e:
            return _error(422, "the model cannot take this input", [{"field": e.field, "message": str(e)}])
        except Exception as e:  # logged by the engine; the process goes on
            return _error(500, f"extraction failed: {type(e).__name__}: {e}", [])
        return {
            "task": job.task,
            "results": [r.to_json() for r in results],
            "seconds": round(time.perf_counter() - start, 6),
        }

    @app.get(f"/{API_VERSION}/health")
    async def health() -> dict[str, Any]:
        """``ok`` while the batching worker runs, with its counts."""
        ok = batcher.running
        body = {"status": "ok" if ok else "down", "uptime_s": round(time.time() - started, 1)}
        body["batches"] = batcher.stats.to_json()
        return body if ok else JSONResponse(status_code=503, content=body)

    @app.get(f"/{API_VERSION}/info")
    async def describe() -> dict[str, Any]:
        """The model (size, vocabulary, trained lengths, tasks) and the server's limits."""
        return {
            "api": API_VERSION,
            **info(),
            "tasks": tasks,
            "limits": {
                "max_text_chars": limits.max_text_chars,
                "max_texts": limits.max_texts,
                "max_labels": limits.max_labels,
            },
            "batching": {"max_batch": max_batch, "max_wait_ms": max_wait_ms},
        }

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app


def app_for_engine(engine: Any, *, limits: Limits = DEFAULT_LIMITS, max_wait_ms: float = 5.0, warm_up: bool = True):
    """The app over an :class:`~iuie.serving.engine.Engine` (batches up to its largest row bucket)."""
    from iuie.extraction.extractor import TASKS

    return create_app(
        engine.run,
        info=engine.info,
        tasks=TASKS,
        limits=limits,
        max_batch=engine.max_batch,
        max_wait_ms=max_wait_ms,
        warm_up=engine.warm_up if warm_up else None,
    )
