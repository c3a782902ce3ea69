"""Structured logging (structlog) to stderr, console or JSON, with secrets scrubbed from every event."""

from __future__ import annotations

import logging
import sys
from typing import TextIO, cast

import structlog

from connector.redact import StdlibFilter, structlog_processor

LEVELS = ("debug", "info", "warning", "error")


class _Stderr:
    """Whatever sys.stderr is at the moment of writing (tests and daemons swap it; a bound one goes stale)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(level: str = "warning", fmt: str = "console") -> None:
    """Route structlog and the standard library through one scrubbing pipeline to stderr."""
    numeric = getattr(logging, level.upper())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog_processor,
            structlog.processors.format_exc_info,
            structlog_processor,  # again: a formatted traceback can quote a secret
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _Stderr())),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    root.setLevel(numeric)
    handler = logging.StreamHandler(cast(TextIO, _Stderr()))
    handler.addFilter(StdlibFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.handlers = [handler]
