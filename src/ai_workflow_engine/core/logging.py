"""Structured logs: one JSON object a line, with the request id and user id bound per request.

The service's own events go through structlog at LOG_LEVEL. Libraries (uvicorn, SQLAlchemy, httpx,
Taskiq...) log through the standard `logging` module: their records are rendered the same way, with
the same request id and user id, but only from WARNING up whatever LOG_LEVEL says, because their
debug output carries request URLs, SQL parameters and HTTP headers. uvicorn's access log, when
someone enables it, shows paths without their query string: the OAuth callback carries the
authorization `code` and `state` there.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

# event keys whose values are secrets: masked if a log call ever passes one
_SECRET_KEYS = frozenset(
    {
        "password",
        "access_token",
        "refresh_token",
        "token",
        "code",
        "code_verifier",
        "client_secret",
        "secret_key",
        "authorization",
    }
)
_LIBRARY_MIN_LEVEL = logging.WARNING


def _mask_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in _SECRET_KEYS.intersection(event):
        event[key] = "[masked]"
    return event


def _json_line(event: Any, **options: Any) -> str:
    """An event as JSON, by orjson: a log line per request, several times faster than `json`."""
    return orjson.dumps(event, default=options.get("default")).decode()


class _StderrHandler(logging.Handler):
    """Writes to `sys.stderr` as it is when the record arrives (not when configured)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


class _PathWithoutQuery(logging.Filter):
    """uvicorn's access line is `'%s - "%s %s HTTP/%s" %d'` with the path and query third."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=_json_line)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _mask_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )

    handler = _StderrHandler()
    handler.setLevel(max(_LIBRARY_MIN_LEVEL, logging.getLevelName(level)))
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(previous)
    root.addHandler(handler)
    logging.captureWarnings(True)  # Python warnings become JSON lines too

    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _PathWithoutQuery) for f in access.filters):
        access.addFilter(_PathWithoutQuery())
