"""Bounded decompression of received data: a cap on the output and on its ratio to the input.

A report a peer sends may be a decompression bomb (a few KB of gzip or zip that inflate to
gigabytes). A size cap alone still inflates up to the cap; the ratio cap refuses one as soon
as the output is larger than MAX_RATIO times the compressed bytes consumed so far, once past
RATIO_FROM (small files compress well, so no ratio applies below it). The same limits as
moxcli.mail.archive applies to archives. Pure: no I/O.
"""

from __future__ import annotations

import zlib
from typing import Protocol

RATIO_FROM = 1 << 20  # bytes of output below which no ratio applies
MAX_RATIO = 200  # output bytes per compressed byte; reports compress 10-50 times, bombs ~1000
CHUNK = 1 << 16  # output per step: the ratio is checked at least this often


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class DecompressionBomb(ValueError):
    """The data expands more than the ratio allows; the message says how much from how little."""


def _check_ratio(output: int, consumed: int, max_ratio: int) -> None:
    if output >= RATIO_FROM and output > max_ratio * max(consumed, 1):
        raise DecompressionBomb(
            f"expands more than {max_ratio} times ({output} bytes from {consumed}): a decompression bomb"
        )


def decompress(d: zlib._Decompress, data: bytes, limit: int, max_ratio: int = MAX_RATIO) -> bytes:
    """``d.decompress(data, limit + 1)``, in steps, raising DecompressionBomb as soon as the
    output outgrows ``max_ratio`` times the input consumed. The caller checks the size
    (more than ``limit`` bytes returned), ``d.eof`` and ``d.unconsumed_tail`` as before;
    zlib.error propagates."""
    out = bytearray()
    tail = data
    while len(out) <= limit:
        chunk = d.decompress(tail, min(CHUNK, limit + 1 - len(out)))
        out += chunk
        tail = d.unconsumed_tail
        _check_ratio(len(out), len(data) - len(tail) - len(d.unused_data), max_ratio)
        if d.eof or not chunk:
            break
    return bytes(out)


def read_member(f: Readable, compressed: int, limit: int, max_ratio: int = MAX_RATIO) -> bytes:
    """Up to ``limit + 1`` bytes of an opened zip member of ``compressed`` bytes, raising
    DecompressionBomb as soon as the output outgrows ``max_ratio`` times that size."""
    out = bytearray()
    while len(out) <= limit:
        chunk = f.read(min(CHUNK, limit + 1 - len(out)))
        if not chunk:
            break
        out += chunk
        _check_ratio(len(out), compressed, max_ratio)
    return bytes(out)
