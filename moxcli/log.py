"""Concise logfmt lines on stderr, in the style of mox's mlog.

    l=info m="queued report" pkg=tlsrptsend domain=example.org

Library code calls ``log.get("pkg").info("message", key=value)``; the CLI sets the level once.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}
_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error"}

_root = logging.getLogger("moxcli")


def _quote(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if text and all(c.isprintable() and c not in ' "=' for c in text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else c for c in escaped)
    return f'"{escaped}"'


class _LogfmtFormatter(logging.Formatter):
    def __init__(self, with_time: bool) -> None:
        super().__init__()
        self.with_time = with_time

    def format(self, record: logging.LogRecord) -> str:
        parts = []
        if self.with_time:
            parts.append("t=" + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)))
        parts.append("l=" + _NAMES.get(record.levelno, "info"))
        parts.append("m=" + _quote(record.getMessage()))
        parts.append("pkg=" + record.name.removeprefix("moxcli."))
        for key, value in getattr(record, "fields", {}).items():
            parts.append(f"{key}={_quote(value)}")
        return " ".join(parts)


class Logger:
    """A named logger taking structured key=value fields."""

    def __init__(self, pkg: str) -> None:
        self._log = logging.getLogger("moxcli." + pkg)

    def _emit(self, level: int, msg: str, fields: dict[str, Any]) -> None:
        if self._log.isEnabledFor(level):
            self._log.log(level, msg, extra={"fields": fields})

    def enabled(self, level: str) -> bool:
        """Whether lines at ``level`` are shown: skip building costly debug fields otherwise."""
        return self._log.isEnabledFor(LEVELS[level])

    def debug(self, msg: str, **fields: Any) -> None:
        self._emit(logging.DEBUG, msg, fields)

    def info(self, msg: str, **fields: Any) -> None:
        self._emit(logging.INFO, msg, fields)

    def warn(self, msg: str, **fields: Any) -> None:
        self._emit(logging.WARNING, msg, fields)

    def error(self, msg: str, **fields: Any) -> None:
        self._emit(logging.ERROR, msg, fields)


def get(pkg: str) -> Logger:
    return Logger(pkg)


def setup(level: str = "warn", stream: Any = None, with_time: bool = False) -> None:
    """Route moxcli's log lines to stderr at ``level`` (debug, info, warn, error)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_LogfmtFormatter(with_time))
    _root.handlers[:] = [handler]
    _root.setLevel(LEVELS[level])
    _root.propagate = False
