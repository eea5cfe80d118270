"""The HTTP endpoints (Starlette): versioned JSON in and out, errors in words, never a traceback."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from desktop_app.photos.pixels import PhotoError
from desktop_app.serve.folders import AllowedFolders, PathRefused
from desktop_app.serve.guard import RequestGuard, error_response
from desktop_app.serve.openapi import API_VERSION, docs_page, document
from desktop_app.serve.payload import MAX_UPLOAD_MB, BadRequest, RequestOptions, caption_json, parse_options
from desktop_app.serve.service import CaptionService, QueueFull

log = logging.getLogger(__name__)
RAW_TYPES = ("application/octet-stream",)  # besides image/*
OPEN_PATHS = ("/docs", "/v1/openapi.json")  # static descriptions: no token needed to read how to call the API


@dataclass(frozen=True)
class AppSettings:
    token: str | None  # None: no token asked (loopback only)
    max_upload: int = MAX_UPLOAD_MB * 2**20
    loopback_only: bool = True
    folders: AllowedFolders = field(default_factory=lambda: AllowedFolders(()))


def _refused(status: int, message: str, **headers: str) -> Response:
    return error_response(status, message, headers or None)


async def _on_http(request: Request, exc: HTTPException) -> Response:
    messages = {404: f"no such endpoint: {request.url.path} (see /docs)",
                405: f"{request.method} is not accepted on {request.url.path} (see /docs)"}
    return error_response(exc.status_code, messages.get(exc.status_code, str(exc.detail)), exc.headers)


async def _on_photo(request: Request, exc: PhotoError) -> Response:
    return _refused(422, f"cannot caption this photo: {exc}")


async def _on_queue_full(request: Request, exc: QueueFull) -> Response:
    return _refused(503, str(exc), **{"Retry-After": str(exc.retry_after)})


async def _on_bad_request(request: Request, exc: BadRequest) -> Response:
    return _refused(400, str(exc))


async def _on_path(request: Request, exc: PathRefused) -> Response:
    return _refused(exc.status, str(exc))


async def _on_error(request: Request, exc: Exception) -> Response:
    log.exception("request %s %s failed", request.method, request.url.path)  # the traceback stays in the log
    return _refused(500, f"the server failed on this request ({type(exc).__name__}); its log has the details")


# Every failure a request can meet, as an answer in words with its status (never a bare 500 page).
EXCEPTION_HANDLERS = {HTTPException: _on_http, PhotoError: _on_photo, QueueFull: _on_queue_full,
                      BadRequest: _on_bad_request, PathRefused: _on_path, Exception: _on_error}


def build_app(service: CaptionService, settings: AppSettings) -> Starlette:
    captioner = service.captioner
    manifest = captioner.bundle.manifest
    started = time.time()
    spec = document(settings.max_upload)

    def answer(result, options: RequestOptions, **extra: Any) -> JSONResponse:
        return JSONResponse({**extra, **caption_json(result, options, captioner.model_id, manifest.grid_size)})

    async def caption_upload(request: Request) -> Response:
        content_type = request.headers.get("content-type", "application/octet-stream").split(";")[0].strip().lower()
        values: dict[str, Any] = dict(request.query_params)
        if content_type == "multipart/form-data":
            async with request.form(max_files=1, max_fields=len(values) + 16, max_part_size=64 * 1024) as form:
                upload = form.get("image")
                if upload is None or isinstance(upload, str):
                    raise BadRequest("multipart uploads need the photo in a file field named 'image'")
                values.update((k, v) for k, v in form.multi_items() if k != "image" and isinstance(v, str))
                options = parse_options(values)
                data = await upload.read()
        elif content_type.startswith("image/") or content_type in RAW_TYPES:
            options = parse_options(values)
            data = await request.body()
        else:
            return error_response(415, f"send the photo as the request body with Content-Type image/* or "
                                       f"application/octet-stream, or as multipart/form-data field 'image', "
                                       f"not as {content_type}")
        if not data:
            raise BadRequest("the upload is empty")
        with service.admitted():  # only a photo fully received takes a place: slow uploads hold none
            result = await service.caption_bytes(data, options.decode)
        return answer(result, options)

    async def caption_path(request: Request) -> Response:
        try:
            values = json.loads(await request.body())
        except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deep, a number too long to read
            raise BadRequest('send a JSON object such as {"path": "/photos/a.jpg"}') from None
        if not isinstance(values, dict) or not isinstance(values.get("path"), str):
            raise BadRequest('send a JSON object with the photo\'s "path" as a string')
        options = parse_options(values, ignore=("path",))
        handle, path = settings.folders.open(values["path"])
        with handle, service.admitted():
            result = await service.caption_file(handle, path.name, options.decode)
        return answer(result, options, path=str(path))

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "api_version": API_VERSION, "uptime_s": round(time.time() - started, 1),
                             "waiting": service.waiting, "queued_for_model": service.queued,
                             "max_queue": service.options.max_queue,
                             "batches": service.stats.as_dict()})

    async def model(request: Request) -> Response:
        pre = manifest.preprocessing
        return JSONResponse({
            "model": captioner.model_id, "name": manifest.model_name, "encoder": manifest.encoder_name,
            "encoder_precision": manifest.encoder_precision, "provider": captioner.provider,
            "input": [pre.input_height, pre.input_width], "vocabulary": manifest.vocab_size,
            "max_caption_length": manifest.max_caption_length, "training_data": manifest.training_data,
            "max_upload_bytes": settings.max_upload, "max_batch": service.options.max_batch,
            "max_wait_ms": service.options.max_wait * 1000, "max_queue": service.options.max_queue,
            "allowed_folders": [str(f) for f in settings.folders.folders]})

    async def openapi(request: Request) -> Response:
        return JSONResponse(spec)

    async def docs(request: Request) -> Response:
        return HTMLResponse(docs_page(spec))

    routes = [Route("/v1/caption", caption_upload, methods=["POST"]),
              Route("/v1/caption/path", caption_path, methods=["POST"]),
              Route("/v1/health", health, methods=["GET"]),
              Route("/v1/model", model, methods=["GET"]),
              Route("/v1/openapi.json", openapi, methods=["GET"]),
              Route("/docs", docs, methods=["GET"])]
    guard = Middleware(RequestGuard, token=settings.token, max_body=settings.max_upload,
                       loopback_only=settings.loopback_only, open_paths=OPEN_PATHS)
    return Starlette(routes=routes, middleware=[guard], exception_handlers=EXCEPTION_HANDLERS)
