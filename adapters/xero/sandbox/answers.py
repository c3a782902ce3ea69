"""How the Xero sandbox answers: Xero's error bodies, JSON, 404s; parsing `where` and If-Modified-Since."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from adapters.xero.sandbox.book import Book

Handler = Callable[[Request, Book], Awaitable[Response]]


def validation_error(message: str, status: int = 400) -> JSONResponse:
    """Xero's 400 body for a request it refuses."""
    body = {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": [{"ValidationErrors": [{"Message": message}]}],
    }
    return JSONResponse(body, status_code=status)


def problem(status: int, title: str, detail: str) -> JSONResponse:
    body: dict[str, Any] = {
        "Type": None,
        "Title": title,
        "Status": status,
        "Detail": detail,
        "Instance": str(uuid.uuid4()),
        "Extensions": {},
    }
    return JSONResponse(body, status_code=status)


def json_answer(payload: Any) -> Response:
    return Response(json.dumps(payload, separators=(",", ":")), media_type="application/json; charset=utf-8")


def not_found() -> Response:
    return Response(
        "The resource you're looking for cannot be found", status_code=404, media_type="text/plain"
    )


def parse_since(value: str) -> datetime:
    """If-Modified-Since as ISO 8601 (xero-python) or an HTTP date; naive means UTC."""
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        at = parsedate_to_datetime(value)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
