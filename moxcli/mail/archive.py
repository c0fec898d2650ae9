"""Read .zip and .tar[.gz|.bz2|.xz] archives entry by entry, refusing hostile ones.

Nothing is extracted to disk: each entry is a stream the importer reads. An archive is
refused (ArchiveError, naming the entry) for what an extraction tool would be tricked by or
choke on: absolute names and ".." (path traversal), symbolic and hard links, devices, the
same name twice, encrypted zip entries, more entries than allowed, and decompression bombs
(a zip entry that declares one size and holds more; a size/compressed ratio over the limit).
The mail-specific meaning of entries (mbox files, maildirs) is the importer's.
"""

from __future__ import annotations

import contextlib
import lzma
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO, Protocol

from moxcli.values import dataclass

# What decompressors raise for damaged or truncated data (bz2 raises a plain OSError without errno).
_DATA_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError)
RATIO_FROM = 1 << 20  # bytes: below this much output, no ratio applies (small files compress well)
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class ArchiveError(ValueError):
    """The archive is not one we read, or is hostile."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_entries: int = 1_000_000
    max_ratio: int = 200  # uncompressed bytes per compressed byte; gzip can reach ~1000


@dataclass
class Entry:
    name: str  # "/"-separated, no leading "./", no trailing "/"
    is_dir: bool
    size: int  # declared uncompressed size
    mtime: float
    stream: Readable | None  # for files: read it before asking for the next entry
    compressed: int = 0  # zip: the entry's compressed size (progress); tar: 0, see the counting reader


class _CountingReader:
    """Counts the compressed bytes read from the archive file (progress and ratio)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.count += len(data)
        return data

    def seekable(self) -> bool:
        return False


class _Checked:
    """An entry's stream that stops a bomb while it is read: more bytes than declared, or
    too many output bytes per input byte over the whole archive."""

    def __init__(self, inner: IO[bytes], name: str, declared: int, ratio: _Ratio) -> None:
        self.inner = inner
        self.name = name
        self.left = declared
        self.ratio = ratio

    def read(self, n: int = -1) -> bytes:
        try:
            data = self.inner.read(n if n >= 0 else self.left + 1)
        except _DATA_ERRORS as exc:
            raise ArchiveError(f"entry {self.name!r}: damaged data: {exc}") from None
        except OSError as exc:
            if exc.errno is not None:  # a real I/O error reading the archive file: not about its data
                raise
            raise ArchiveError(f"entry {self.name!r}: damaged data: {exc}") from None
        self.left -= len(data)
        if self.left < 0:
            raise ArchiveError(f"entry {self.name!r}: holds more data than its declared size (a decompression bomb?)")
        self.ratio.add(len(data))
        return data

    def read1(self, n: int = -1) -> bytes:
        return self.read(n)


class _Ratio:
    def __init__(self, compressed: _CountingReader | None, limit: int, fixed_input: int = 0) -> None:
        self.compressed = compressed
        self.fixed_input = fixed_input
        self.limit = limit
        self.output = 0

    def add(self, n: int) -> None:
        self.output += n
        if self.output < RATIO_FROM:
            return
        consumed = self.compressed.count if self.compressed is not None else self.fixed_input
        if self.output > self.limit * max(consumed, 1):
            raise ArchiveError(
                f"expands more than {self.limit} times ({self.output} bytes from {consumed}): a decompression bomb?"
            )


def entry_name(raw: str) -> str:
    """The entry's path, checked: relative, no "..", no control characters (RFC-free: what an
    extractor would be tricked by)."""
    if not raw or "\x00" in raw or any(ord(c) < 32 for c in raw):
        raise ArchiveError(f"entry {raw!r}: invalid name")
    if raw.startswith(("/", "\\")) or (len(raw) > 1 and raw[1] == ":"):
        raise ArchiveError(f"entry {raw!r}: absolute path")
    parts = [p for p in raw.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"entry {raw!r}: path traversal ('..')")
    if not parts:
        raise ArchiveError(f"entry {raw!r}: invalid name")
    return "/".join(parts)


def kind(path: Path) -> str:
    """'zip' or 'tar' by content (names lie); tarfile recognises gzip, bzip2 and xz itself."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head in (_ZIP_MAGIC, _EMPTY_ZIP_MAGIC):
        return "zip"
    return "tar"


@contextlib.contextmanager
def entries(path: Path, limits: ArchiveLimits) -> Iterator[tuple[Iterator[Entry], _CountingReader | None]]:
    """Entries of the archive at ``path`` in archive order, and the reader whose ``count`` is
    the archive bytes read so far (None for zip: its entries are read by position)."""
    if kind(path) == "zip":
        with zipfile.ZipFile(path) as zf:
            yield _zip_entries(zf, path, limits), None
        return
    with open(path, "rb") as raw:
        counting = _CountingReader(raw)
        try:
            tar = tarfile.open(fileobj=counting, mode="r|*")  # type: ignore[call-overload]  # noqa: SIM115
        except tarfile.ReadError:
            raise ArchiveError("not a zip or tar archive (.zip, .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz)") from None
        with tar:
            yield _tar_entries(tar, counting, limits), counting


def _zip_entries(zf: zipfile.ZipFile, path: Path, limits: ArchiveLimits) -> Iterator[Entry]:
    infos = zf.infolist()
    # A zip names all its entries up front: refuse a hostile one before reading anything.
    if len(infos) > limits.max_entries:
        raise ArchiveError(f"{len(infos)} entries, more than the limit of {limits.max_entries}")
    seen: set[str] = set()
    declared = 0
    for info in infos:
        name = entry_name(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise ArchiveError(f"entry {info.filename!r}: symbolic link")
        if info.flag_bits & 0x1:
            raise ArchiveError(f"entry {info.filename!r}: encrypted")
        if name in seen:
            raise ArchiveError(f"entry {info.filename!r}: the same name twice")
        seen.add(name)
        if info.file_size >= RATIO_FROM and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise ArchiveError(
                f"entry {info.filename!r}: declares {info.file_size} bytes from {info.compress_size} "
                f"(more than {limits.max_ratio} times: a decompression bomb?)"
            )
        declared += info.file_size
    size = path.stat().st_size
    if declared >= RATIO_FROM and declared > limits.max_ratio * max(size, 1):
        raise ArchiveError(
            f"declares {declared} bytes in a {size}-byte file "
            f"(more than {limits.max_ratio} times: a decompression bomb?)"
        )
    ratio = _Ratio(None, limits.max_ratio, fixed_input=size)
    for info in infos:
        name = entry_name(info.filename)
        mtime = _zip_time(info)
        if info.is_dir():
            yield Entry(name, True, 0, mtime, None, info.compress_size)
            continue
        with zf.open(info) as f:
            stream = _Checked(f, info.filename, info.file_size, ratio)
            yield Entry(name, False, info.file_size, mtime, stream, info.compress_size)


def _zip_time(info: zipfile.ZipInfo) -> float:
    import calendar

    try:
        return float(calendar.timegm((*info.date_time, 0, 0, 0)))
    except (ValueError, OverflowError):
        return 0.0


def _tar_entries(tar: tarfile.TarFile, counting: _CountingReader, limits: ArchiveLimits) -> Iterator[Entry]:
    seen: set[str] = set()
    ratio = _Ratio(counting, limits.max_ratio)
    n = 0
    while True:
        try:
            member = tar.next()
        except tarfile.TarError as exc:
            raise ArchiveError(f"reading the next tar header: {exc}") from None
        except (EOFError, OSError) as exc:  # truncated or corrupt compressed data
            raise ArchiveError(f"reading the archive: {exc}") from None
        if member is None:
            return
        n += 1
        if n > limits.max_entries:
            raise ArchiveError(f"more entries than the limit of {limits.max_entries}")
        name = entry_name(member.name)
        if member.issym() or member.islnk():
            raise ArchiveError(f"entry {member.name!r}: {'symbolic' if member.issym() else 'hard'} link")
        if not (member.isfile() or member.isdir()):
            raise ArchiveError(f"entry {member.name!r}: not a file or directory (device, FIFO, ...)")
        if name in seen:
            raise ArchiveError(f"entry {member.name!r}: the same name twice")
        seen.add(name)
        ratio.add(0)
        if member.isdir():
            yield Entry(name, True, 0, float(member.mtime), None)
            continue
        f = tar.extractfile(member)
        assert f is not None  # a regular file always has data
        yield Entry(name, False, member.size, float(member.mtime), _Checked(f, member.name, member.size, ratio))
