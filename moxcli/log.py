"""Concise logfmt lines on stderr, in the style of mox's mlog.

    l=info m="queued report" pkg=tlsrptsend domain=example.org

Library code calls ``log.get("pkg").info("message", key=value)``; the CLI sets the level once.

The logging module (about 4 ms of start-up with what it imports) is imported at the first
line that is printed, or at once if something else imported it already: until then nothing
but setup() can have configured moxcli's loggers, so setup()'s level alone decides what
is printed, and setup() is applied when logging is first needed.
"""

from __future__ import annotations

import sys
import time
from typing import Any

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40  # logging's levels
LEVELS = {"debug": DEBUG, "info": INFO, "warn": WARNING, "error": ERROR}
_NAMES = {DEBUG: "debug", INFO: "info", WARNING: "warn", ERROR: "error"}

# setup(): the level asked for (logging's default for a logger nobody configured: WARNING),
# and its arguments while they wait for the logging module.
_level = WARNING
_pending: tuple[int, Any, bool] | None = None


def _quote(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if text and all(c.isprintable() and c not in ' "=' for c in text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else c for c in escaped)
    return f'"{escaped}"'


def _format(record: Any, with_time: bool) -> str:
    parts = []
    if with_time:
        parts.append("t=" + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)))
    parts.append("l=" + _NAMES.get(record.levelno, "info"))
    parts.append("m=" + _quote(record.getMessage()))
    parts.append("pkg=" + record.name.removeprefix("moxcli."))
    for key, value in getattr(record, "fields", {}).items():
        parts.append(f"{key}={_quote(value)}")
    return " ".join(parts)


def _logging() -> Any:
    """The logging module, with a waiting setup() applied."""
    global _pending
    import logging

    if _pending is not None:
        level, stream, with_time = _pending
        _pending = None

        class LogfmtFormatter(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:
                return _format(record, with_time)

        handler = logging.StreamHandler(stream)
        handler.setFormatter(LogfmtFormatter())
        root = logging.getLogger("moxcli")
        root.handlers[:] = [handler]
        root.setLevel(level)
        root.propagate = False
    return logging


class Logger:
    """A named logger taking structured key=value fields."""

    def __init__(self, pkg: str) -> None:
        self._name = "moxcli." + pkg

    def _shown(self, level: int) -> Any:
        """The logging logger when a line at ``level`` is printed, else None."""
        if level < _level and "logging" not in sys.modules:
            return None  # nothing else configured logging: setup()'s level decides
        logger = _logging().getLogger(self._name)
        return logger if logger.isEnabledFor(level) else None

    def _emit(self, level: int, msg: str, fields: dict[str, Any]) -> None:
        logger = self._shown(level)
        if logger is not None:
            logger.log(level, msg, extra={"fields": fields})

    def enabled(self, level: str) -> bool:
        """Whether lines at ``level`` are shown: skip building costly debug fields otherwise."""
        return self._shown(LEVELS[level]) is not None

    def debug(self, msg: str, **fields: Any) -> None:
        self._emit(DEBUG, msg, fields)

    def info(self, msg: str, **fields: Any) -> None:
        self._emit(INFO, msg, fields)

    def warn(self, msg: str, **fields: Any) -> None:
        self._emit(WARNING, msg, fields)

    def error(self, msg: str, **fields: Any) -> None:
        self._emit(ERROR, msg, fields)


def get(pkg: str) -> Logger:
    return Logger(pkg)


def setup(level: str = "warn", stream: Any = None, with_time: bool = False) -> None:
    """Route moxcli's log lines to stderr at ``level`` (debug, info, warn, error)."""
    global _level, _pending
    _level = LEVELS[level]
    _pending = (_level, stream or sys.stderr, with_time)
    if "logging" in sys.modules:
        _logging()
