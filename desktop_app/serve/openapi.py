"""The API described as OpenAPI 3.1, and a plain HTML page made from it (no scripts from the internet)."""

from __future__ import annotations

import html
import json
from typing import Any

from desktop_app.serve.payload import OPTIONS

API_VERSION = "1"


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json("Error")}


_OPTION_SCHEMAS = {o.name: {"type": "boolean", "description": o.help, "default": o.default}
                   if isinstance(o.default, bool) else
                   {"type": "integer", "description": o.help, "default": o.default, "minimum": o.low, "maximum": o.high}
                   for o in OPTIONS}
_BUSY = {"description": "too many photos waiting; try again after Retry-After seconds",
         "headers": {"Retry-After": {"schema": {"type": "integer"}}},
         "content": _json("Error")}
_CAPTION_OK = {"description": "the caption", "content": _json("Caption")}


def document(max_upload: int) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "photocaption", "version": API_VERSION,
                 "description": "Captions for photos from the model on this machine. Nothing is fetched from the "
                                "network: send the photo itself, or the path of a file under a folder the server "
                                "was started with. Every request needs 'Authorization: Bearer TOKEN' unless the "
                                "server was started with --no-token (this page and openapi.json excepted)."},
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "status"],
                          "properties": {"error": {"type": "string", "description": "what went wrong, in words"},
                                         "status": {"type": "integer"}}},
                "Caption": {"type": "object", "required": ["caption", "score", "model"], "properties": {
                    "caption": {"type": "string"},
                    "score": {"type": "number", "description": "length-normalised log-probability (higher is surer)"},
                    "model": {"type": "string"},
                    "confidence": {"type": ["number", "null"],
                                   "description": "0-1, how likely the caption is right (null: the model cannot tell)"},
                    "needs_review": {"type": "boolean",
                                     "description": "confidence below the model's calibrated threshold: check it"},
                    "path": {"type": "string", "description": "the file read (caption by path only)"},
                    "alternatives": {"type": "array", "items": {"type": "object", "properties": {
                        "caption": {"type": "string"}, "score": {"type": "number"}}}},
                    "keywords": {"type": "array", "items": {"type": "string"}},
                    "attention": {"type": "object", "properties": {
                        "grid": {"type": "array", "items": {"type": "integer"}, "description": "[rows, columns]"},
                        "words": {"type": "array", "items": {"type": "string"}},
                        "weights": {"type": "array", "items": {"type": "array", "items": {"type": "number"}},
                                    "description": "per word, rows*columns weights, row-major"}}}}},
            },
        },
        "security": [{"token": []}],
        "paths": {
            "/v1/caption": {"post": {
                "summary": "Caption an uploaded photo",
                "description": f"The photo as the raw request body (Content-Type image/* or application/octet-stream) "
                               f"or as the multipart/form-data field 'image'. At most {max_upload / 2**20:g} MiB. "
                               "Options as query parameters (or, for multipart, as form fields).",
                "parameters": [{"name": name, "in": "query", "required": False, "schema": schema}
                               for name, schema in _OPTION_SCHEMAS.items()],
                "requestBody": {"required": True, "content": {
                    "image/*": {"schema": {"type": "string", "format": "binary"}},
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                    "multipart/form-data": {"schema": {"type": "object", "required": ["image"], "properties": {
                        "image": {"type": "string", "format": "binary"}, **_OPTION_SCHEMAS}}}}},
                "responses": {"200": _CAPTION_OK, "400": _error("a bad option"), "401": _error("no or wrong token"),
                              "403": _error("sent by a web page (its Origin is not this server)"),
                              "408": _error("the body stalled or came too slowly"),
                              "413": _error("the upload is too large"),
                              "415": _error("the body is not sent as an image"),
                              "422": _error("not an image, not a format this server reads, corrupt, or too large "
                                            "to decode"), "503": _BUSY}}},
            "/v1/caption/path": {"post": {
                "summary": "Caption a photo file on this machine",
                "description": "Only files under the folders given with --allow-folder; '..' and symlinks leading "
                               "out of them are refused.",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["path"],
                    "properties": {"path": {"type": "string", "description": "absolute path"}, **_OPTION_SCHEMAS}}}}},
                "responses": {"200": _CAPTION_OK, "400": _error("a bad option or path"),
                              "401": _error("no or wrong token"),
                              "403": _error("outside the allowed folders, or changed while opened"),
                              "404": _error("no such file"),
                              "422": _error("not an image, not a format this server reads, corrupt, or too large "
                                            "to decode"),
                              "503": _BUSY}}},
            "/v1/health": {"get": {"summary": "Is the server up, and how busy",
                                   "responses": {"200": {"description": "status, photos waiting, batches run"}}}},
            "/v1/model": {"get": {"summary": "The loaded model and how it runs",
                                  "responses": {"200": {"description": "model id, provider, input size, limits"}}}},
        },
    }


def docs_page(spec: dict[str, Any]) -> str:
    """A readable page: each endpoint, its options, request bodies and answers, then the JSON itself."""
    parts = [f"<h1>{html.escape(spec['info']['title'])} API v{spec['info']['version']}</h1>",
             f"<p>{html.escape(spec['info']['description'])}</p>",
             '<p>Machine-readable: <a href="/v1/openapi.json">/v1/openapi.json</a> (OpenAPI 3.1).</p>']
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            parts.append(f"<h2><code>{method.upper()} {html.escape(path)}</code>: {html.escape(op['summary'])}</h2>")
            if op.get("description"):
                parts.append(f"<p>{html.escape(op['description'])}</p>")
            params = op.get("parameters") or []
            if params:
                parts.append("<table><tr><th>option</th><th>type</th><th>default</th><th>meaning</th></tr>" + "".join(
                    f"<tr><td><code>{p['name']}</code></td><td>{p['schema']['type']}</td>"
                    f"<td>{json.dumps(p['schema']['default'])}</td>"
                    f"<td>{html.escape(p['schema']['description'])}</td></tr>"
                    for p in params) + "</table>")
            if "requestBody" in op:
                parts.append("<p>Body: " + ", ".join(f"<code>{html.escape(t)}</code>"
                                                    for t in op["requestBody"]["content"]) + "</p>")
            parts.append("<ul>" + "".join(f"<li><b>{code}</b> {html.escape(r['description'])}</li>"
                                          for code, r in op["responses"].items()) + "</ul>")
    parts.append(f"<h2>OpenAPI document</h2><pre>{html.escape(json.dumps(spec, indent=2))}</pre>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{border:1px solid #ccc;padding:.2em .5em}"
             "table{border-collapse:collapse}pre{background:#f4f4f4;padding:1em;overflow:auto}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>photocaption API</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
