"""Log output of the command-line programs: one line per event, console or JSON.

Library code only *emits* structlog events (``station_id``, ``message_id`` bound where they
exist, never a secret); the programs decide where they go. ``console`` is for a terminal;
``json`` (one object per line) is for a log collector. Either way values that came from a
station — ids, vendor strings, descriptions — are escaped, so a station cannot forge log
lines with ``\\r\\n`` (reliability.md G6): the JSON renderer escapes them, and the console
renderer prints them as Python string literals.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

__all__ = ["LogFormat", "configure_logging"]

LogFormat = Literal["console", "json"]


def configure_logging(level: str = "info", fmt: LogFormat = "console") -> None:
    """Send structlog events at ``level`` and above to stderr in ``fmt``.

    Raises:
        ValueError: an unknown level name.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor
    if fmt == "json":
        shared.append(structlog.processors.dict_tracebacks)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(),
            repr_native_str=True,
            exception_formatter=structlog.dev.plain_traceback,
        )
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
