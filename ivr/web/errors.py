"""One error policy for the whole app.

- A malformed webhook parameter (:class:`BadRequest`) is a 400 naming the parameter, on
  every blueprint.
- A JSON body that fails its model (:class:`BodyError`) is a 422 naming the field.
- Other HTTP errors keep their status, with a one-line text (voice) or JSON (APIs) body.
- A store that cannot be written (:class:`ivr.errors.StoreError`, ``sqlite3.Error``) is a
  503 on the APIs, so clients retry; anything else unexpected is a logged 500.
- On a voice webhook nothing unexpected ever reaches the caller as an error: they hear an
  apology and wait in the general queue for a person (:func:`safe_path_response`).
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from ivr.errors import StoreError

log = logging.getLogger("ivr.web")


class BadRequest(Exception):
    """A webhook parameter is missing or malformed; the message names it."""


class BodyError(Exception):
    """A JSON request body is not valid; ``field`` names where (``""`` for the body)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


def register(app: Flask) -> None:
    app.register_error_handler(BadRequest, _bad_request)
    app.register_error_handler(BodyError, _bad_body)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def _is_voice() -> bool:
    return request.path.startswith("/voice/")


def _bad_request(exc: BadRequest) -> Response:
    log.warning("bad webhook request", extra={"path": request.path, "error": str(exc)})
    return Response(f"Bad Request: {exc}\n", 400, mimetype="text/plain")


def _bad_body(exc: BodyError) -> Any:
    return jsonify(error=str(exc), field=exc.field), 422


def _http_error(exc: HTTPException) -> Any:
    if _is_voice() or exc.code == 404 and not request.path.startswith(
            ("/agents", "/admin", "/queues", "/calls")):
        return Response(f"{exc.code} {exc.name}: {exc.description}\n", exc.code or 500,
                        mimetype="text/plain")
    return jsonify(error=f"{exc.name}: {exc.description}"), exc.code or 500


def _unexpected(exc: Exception) -> Any:
    """Last line of defence: a caller on a voice webhook still reaches a human."""
    if isinstance(exc, RecursionError):  # a pathologically nested body
        return _bad_body(BodyError("", "the body is nested too deeply"))
    unavailable = isinstance(exc, (StoreError, sqlite3.Error))
    if unavailable:
        log.error("store unavailable", extra={"path": request.path, "error": str(exc)})
    else:
        log.exception("unhandled error", extra={"path": request.path})
    if _is_voice():
        from ivr.web.safe import safe_path_response

        return safe_path_response(str(exc))
    if unavailable:
        return jsonify(error="the call store is unavailable; try again shortly"), 503
    return jsonify(error="internal error"), 500
