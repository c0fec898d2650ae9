"""Importing incoming report mail, one message at a time, each with its own outcome.

Every message read from a source (files, directories, a maildir, an mbox, an IMAP mailbox) ends
as one of: ``imported`` (stored), ``duplicate`` (the same report is stored already: nothing
stored), ``not-a-report`` (a message without a TLS or DMARC report) or ``rejected`` (a report
that cannot be parsed or is not for us, with the reason). One bad message never stops the
others: parsed reports are stored in batches of up to BATCH_SIZE reports, one transaction per
batch, and a batch holds only reports that parsed, so the outcome is the same as one
transaction per report. Messages are read one at a time and a batch keeps no message bytes,
only the parsed records, of at most BATCH_BYTES of input: memory is bounded by that, not by
the mailbox (docs/tls-reports.md, "Memory").

The report types plug in as modules with ``KIND``, ``prepare(data, name, config, now)``,
``find_duplicate(tx, key)``, ``SEQUENCE`` (of their store ids) and ``add(tx, prepared, rid)``:
``incoming_tls`` and ``incoming_dmarc``.
"""

from __future__ import annotations

import functools
import gc
import os
import stat
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from moxcli.config import Config
from moxcli.errors import UsageError
from moxcli.gcpause import cyclic_gc_paused
from moxcli.jsonfmt import Finding, findings_json
from moxcli.store import Store
from moxcli.store.dmarc import StoredDMARCReport
from moxcli.store.env import Txn
from moxcli.store.tlsreports import StoredTLSReport
from moxcli.values import dataclass, field

IMPORTED = "imported"
DUPLICATE = "duplicate"
NOT_A_REPORT = "not-a-report"
REJECTED = "rejected"
OUTCOMES = (IMPORTED, DUPLICATE, NOT_A_REPORT, REJECTED)

TLS = "tls"
DMARC = "dmarc"
KINDS = (TLS, DMARC)

MAX_INPUT = 20 << 20  # the largest report input either type accepts (20 MiB of JSON or XML)
BATCH_SIZE = 500
# Input bytes of the reports in one batch: a batch's parsed records (several times their input
# in Python objects) and the transaction's dirty pages are what an import holds, so this bounds
# its memory for large reports (16 MiB gave 98 MB peak RSS for 70 reports of 300 KB; 4 MiB, flat).
BATCH_BYTES = 4 << 20
# The store pages a batch's dedupe lookups read stay resident (LMDB reads through a map) until
# dropped (Store.drop_read_pages); in a store of up to this size that is at most its size, and
# not dropping them spares the import ctypes and /proc/self/maps (3 ms of start-up).
DROP_PAGES_FROM = 16 << 20


class NotAReport(Exception):
    """The message holds no report of the kind looked for."""


class Rejected(Exception):
    """A report that cannot be stored; the message is the reason, ``code`` its stable name
    (docs/tls-reports.md: invalid-report, no-policies, not-our-domain, future-report,
    too-large, unreadable)."""

    def __init__(self, message: str, code: str = "invalid-report") -> None:
        super().__init__(message)
        self.code = code
        self.kind: str | None = None  # the kind whose parser refused it (set by prepare)


@dataclass(slots=True)
class Message:
    """One input: its bytes, or why it could not be read. ``ref`` is the source's handle (IMAP UID)."""

    source: str
    data: bytes | None
    error: str | None = None
    ref: Any = None
    error_code: str = "unreadable"


@dataclass(slots=True)
class Prepared:
    """A parsed report, ready to store (from a kind module's ``prepare``)."""

    kind: str
    key: bytes
    record: StoredTLSReport | StoredDMARCReport  # the kind's record to store
    report_id: str
    organization: str
    policy_domains: list[str]
    begin: float | None
    end: float | None
    warnings: list[Finding] = field(default_factory=list)
    size: int = 0


@functools.lru_cache(maxsize=4096)  # a mailbox's reports name few domains and days
def _a_label(name: str) -> str:
    """docs/json.md: domain names in JSON are A-labels."""
    from moxcli.domain import DomainError, parse_domain

    try:
        return parse_domain(name, lax=True).ascii
    except DomainError:
        return name


@functools.lru_cache(maxsize=4096)
def rfc3339(t: float | None) -> str | None:
    """docs/json.md: times are RFC 3339 in UTC."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class Outcome:
    source: str
    outcome: str
    kind: str | None = None
    reason: str | None = None
    reason_code: str | None = None
    id: int | None = None
    report_id: str | None = None
    organization: str | None = None
    policy_domains: list[str] = field(default_factory=list)
    begin: float | None = None
    end: float | None = None
    warnings: list[Finding] = field(default_factory=list)
    ref: Any = None

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "outcome": self.outcome,
            "kind": self.kind,
            "reason": self.reason,
            "reason_code": self.reason_code,
            "id": self.id,
            "report_id": self.report_id,
            "organization_name": self.organization,
            "policy_domains": [_a_label(d) for d in self.policy_domains],
            "start": rfc3339(self.begin),
            "end": rfc3339(self.end),
            "warnings": findings_json(self.warnings),
        }


@dataclass
class ImportSummary:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    imported_by_kind: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    moved: int = 0  # IMAP messages moved to the archive folder
    flagged: int = 0  # IMAP messages flagged \Seen

    @property
    def messages(self) -> int:
        return sum(self.counts.values())

    @property
    def ok(self) -> bool:
        """Exit 0: nothing rejected (not-a-report is normal in a mailbox)."""
        return self.counts[REJECTED] == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            **{k.replace("-", "_"): v for k, v in self.counts.items()},
            "imported_by_kind": self.imported_by_kind,
            "moved": self.moved,
            "flagged": self.flagged,
            "seconds": round(self.seconds, 3),
        }


_KIND_MODULES: dict[str, ModuleType] = {}


def kind_module(kind: str) -> ModuleType:
    """The module of a report kind, imported when first asked for (per message: a dict lookup)."""
    mod = _KIND_MODULES.get(kind)
    if mod is not None:
        return mod
    if kind == TLS:
        from moxcli.reports import incoming_tls

        mod = incoming_tls
    else:
        from moxcli.reports import incoming_dmarc

        mod = incoming_dmarc
    _KIND_MODULES[kind] = mod
    return mod


def _looks_tls(data: bytes) -> bool:
    """Which parser to try first when sorting both kinds (the other is tried next anyway, and
    a rejection is told by the kind tried first): JSON, gzip of JSON, or ``tlsrpt`` in a
    message is TLS; anything else DMARC."""
    if data[:2] == b"\x1f\x8b":
        # Only the first bytes of the decompressed data are looked at (a decompression bomb
        # gives no more than these here; the parser then refuses it as one).
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[:4096], 64)
        except zlib.error:
            head = b""
        return head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"[")
    return data[:4096].lstrip()[:1] in (b"{", b"[") or b"tlsrpt" in data


def prepare(data: bytes, name: str, config: Config, kinds: Sequence[str], now: float) -> Prepared:
    """Parse a message as the first kind that finds a report in it. NotAReport if none does;
    Rejected with the reason of the most likely kind when a report is there but is bad."""
    order = list(kinds)
    if len(order) > 1 and not _looks_tls(data):
        order.reverse()
    first_error: Rejected | None = None
    for kind in order:
        try:
            return kind_module(kind).prepare(data, name, config, now)
        except NotAReport:
            continue
        except Rejected as exc:
            exc.kind = exc.kind or kind
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    raise NotAReport()


def import_messages(
    store: Store,
    config: Config,
    messages: Iterable[Message],
    kinds: Sequence[str] = KINDS,
    on_outcome: Callable[[Outcome], None] | None = None,
    after_batch: Callable[[list[Outcome]], None] | None = None,
    now: float | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportSummary:
    """Import every message; outcomes go to ``on_outcome`` in input order, after their batch is
    committed (so "imported" is only said of stored reports); ``after_batch`` gets each batch's
    outcomes (an IMAP source then moves or flags those messages)."""
    start = time.monotonic()
    summary = ImportSummary()
    # (source, ref, parsed report or outcome): never the message's bytes, which the batch
    # does not need once the message is parsed.
    pending: list[tuple[str, Any, Prepared | Outcome]] = []
    pending_bytes = 0

    def flush() -> None:
        nonlocal pending_bytes
        if not pending:
            return
        reports = [p for _, _, p in pending if isinstance(p, Prepared)]
        stored = store.update(lambda tx: _store_batch(tx, reports)) if reports else {}
        outcomes = []
        for source, ref, p in pending:
            o = _outcome(source, ref, p, stored.get(id(p))) if isinstance(p, Prepared) else p
            summary.counts[o.outcome] += 1
            if o.outcome == IMPORTED and o.kind:
                summary.imported_by_kind[o.kind] = summary.imported_by_kind.get(o.kind, 0) + 1
            outcomes.append(o)
            if on_outcome is not None:
                on_outcome(o)
        pending.clear()  # the parsed records go before the next batch is read
        pending_bytes = 0
        gc.collect(0)  # cyclic garbage a parser (the email package's) may have left
        if after_batch is not None:
            after_batch(outcomes)
        if store.used_bytes() > DROP_PAGES_FROM:
            store.drop_read_pages()  # the dedupe lookups' store pages

    t = time.time() if now is None else now
    with cyclic_gc_paused():
        for msg in messages:
            item: Prepared | Outcome
            if msg.data is None:
                item = Outcome(
                    msg.source, REJECTED, reason=msg.error or "cannot be read", reason_code=msg.error_code, ref=msg.ref
                )
            else:
                try:
                    item = prepare(msg.data, msg.source, config, kinds, t)
                except NotAReport:
                    item = Outcome(msg.source, NOT_A_REPORT, ref=msg.ref)
                except Rejected as exc:
                    item = Outcome(
                        msg.source, REJECTED, kind=exc.kind, reason=str(exc), reason_code=exc.code, ref=msg.ref
                    )
                else:
                    pending_bytes += item.size
            pending.append((msg.source, msg.ref, item))
            del msg  # the message's bytes are not kept while the next one is read
            if len(pending) >= batch_size or pending_bytes >= BATCH_BYTES:
                flush()
        flush()
    summary.seconds = time.monotonic() - start
    return summary


def _store_batch(tx: Txn, reports: list[Prepared]) -> dict[int, tuple[str, int]]:
    """Store the batch's new reports: {id(prepared): (outcome, report id in the store)}.

    A report whose key is stored already, or met earlier in the batch, is a duplicate of that
    one; the new ones get consecutive ids of their kind's sequence, in input order (the ids
    one transaction per report would give), reserved once per batch."""
    out: dict[int, tuple[str, int]] = {}
    new: dict[str, list[Prepared]] = {}
    first_of: dict[tuple[str, bytes], Prepared] = {}
    later: list[tuple[Prepared, Prepared]] = []  # (duplicate, the earlier report in this batch)
    for p in reports:
        earlier = first_of.get((p.kind, p.key))
        if earlier is not None:
            later.append((p, earlier))
            continue
        dup = kind_module(p.kind).find_duplicate(tx, p.key)
        if dup is not None:
            out[id(p)] = (DUPLICATE, dup)
        else:
            first_of[(p.kind, p.key)] = p
            new.setdefault(p.kind, []).append(p)
    for kind, items in new.items():
        mod = kind_module(kind)
        rid = tx.reserve_ids(mod.SEQUENCE, len(items))
        for p in items:
            mod.add(tx, p, rid)
            out[id(p)] = (IMPORTED, rid)
            rid += 1
    for p, earlier in later:
        out[id(p)] = (DUPLICATE, out[id(earlier)][1])
    return out


def _outcome(source: str, ref: Any, p: Prepared, stored: tuple[str, int] | None) -> Outcome:
    outcome, rid = stored if stored is not None else (REJECTED, None)
    return Outcome(
        source,
        outcome,
        kind=p.kind,
        id=rid,
        report_id=p.report_id,
        organization=p.organization,
        policy_domains=p.policy_domains,
        begin=p.begin,
        end=p.end,
        warnings=p.warnings,
        ref=ref,
    )


# --- Sources ----------------------------------------------------------------------------


def read_bounded(path: Path | str) -> Message:
    """A file as a Message; too large or unreadable gives a Message with the error."""
    try:
        # os.open, fstat and read: a third of open_regular's file object and buffered read,
        # for the regular file a mail folder nearly always holds (moxcli.inputs.open_regular
        # decides everything else: a FIFO or device in a mail folder is refused, not read).
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return _read_bounded_file(path)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return _read_bounded_file(path)
        want = min(st.st_size, MAX_INPUT) + 1  # as _read_bounded_file: the size, not the limit
        chunks = []
        while want > 0:
            chunk = os.read(fd, want)
            if not chunk:
                break
            chunks.append(chunk)
            want -= len(chunk)
    except OSError as exc:
        return Message(str(path), None, f"cannot read: {exc.strerror}")
    finally:
        os.close(fd)
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if len(data) > MAX_INPUT:
        return Message(str(path), None, f"larger than {MAX_INPUT} bytes, refused", error_code="too-large")
    return Message(str(path), data)


def _read_bounded_file(path: Path | str) -> Message:
    from moxcli.inputs import open_regular

    try:
        with open_regular(path) as f:  # a FIFO or device in a mail folder is refused, not read
            size = os.fstat(f.fileno()).st_size
            # read(n) allocates n bytes first: ask for the file's size, not for the limit.
            data = f.read(min(size, MAX_INPUT) + 1)
    except UsageError as exc:
        return Message(str(path), None, str(exc).removeprefix(f"{path}: "))
    except OSError as exc:
        return Message(str(path), None, f"cannot read: {exc.strerror}")
    if len(data) > MAX_INPUT:
        return Message(str(path), None, f"larger than {MAX_INPUT} bytes, refused", error_code="too-large")
    return Message(str(path), data)


def iter_paths(paths: Iterable[Path]) -> Iterator[Message]:
    """Files as given; directories walked (sorted, hidden entries skipped)."""
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith("."):
                        yield read_bounded(os.path.join(root, name))
        else:
            yield read_bounded(path)


def iter_maildir(path: Path) -> Iterator[Message]:
    """The messages of a maildir's new/ and cur/ (docs/behaviour-notes.md §8.3)."""
    from moxcli.mail.maildir import check_maildir, entries

    check_maildir(path)
    for sub, name in entries(path):
        yield read_bounded(path / sub / name)


def iter_mbox(path: Path) -> Iterator[Message]:
    """The messages of an mbox file (the importer's reader, docs/behaviour-notes.md §8.2), named ``FILE:LINE``."""
    from moxcli.mail.mbox import iter_mbox as split_mbox

    with open(path, "rb") as f:
        for m in split_mbox(f):
            if len(m.data) > MAX_INPUT:
                yield Message(
                    f"{path}:{m.line}", None, f"larger than {MAX_INPUT} bytes, refused", error_code="too-large"
                )
            else:
                yield Message(f"{path}:{m.line}", m.data)


@dataclass
class Sources:
    """Where to read report mail from (any mix); ``imap`` is an imap:// or imaps:// URL."""

    paths: Sequence[Path] = ()
    maildirs: Sequence[Path] = ()
    mboxes: Sequence[Path] = ()
    imap: str | None = None
    archive_folder: str | None = None
    mark_seen: bool = False


def _check_sources(sources: Sources) -> None:
    """Usage errors before anything is read: missing paths, non-maildirs, IMAP-only options."""
    for p in [*sources.paths, *sources.mboxes]:
        if not p.exists():
            raise UsageError(f"{p}: no such file or directory")
    for p in sources.mboxes:
        if p.is_dir():
            raise UsageError(f"{p}: is a directory, not an mbox file")
    for p in [*sources.paths, *sources.mboxes]:
        if not p.is_dir():
            from moxcli.inputs import open_regular

            open_regular(p).close()  # named on the command line: a FIFO or device is a usage error
    for p in sources.maildirs:
        from moxcli.mail.maildir import MaildirError, check_maildir

        try:
            check_maildir(p)
        except MaildirError as exc:
            raise UsageError(str(exc)) from None
    if (sources.archive_folder or sources.mark_seen) and not sources.imap:
        raise UsageError("--archive-folder and --mark-seen apply to --imap only")
    if not (sources.paths or sources.maildirs or sources.mboxes or sources.imap):
        raise UsageError("nothing to import: give files or directories, --maildir, --mbox or --imap")


def _local_messages(sources: Sources) -> Iterator[Message]:
    yield from iter_paths(sources.paths)
    for d in sources.maildirs:
        yield from iter_maildir(d)
    for f in sources.mboxes:
        from moxcli.mail.mbox import MboxError

        try:
            yield from iter_mbox(f)
        except MboxError as exc:
            raise UsageError(f"{f}: {exc}") from None


def import_sources(
    store: Store,
    config: Config,
    sources: Sources,
    kinds: Sequence[str] = KINDS,
    on_outcome: Callable[[Outcome], None] | None = None,
    now: float | None = None,
) -> ImportSummary:
    """Import report mail of the given kinds from every source: files and directories, then
    maildirs, then mbox files, then the IMAP mailbox (whose processed messages are then flagged
    or moved, see moxcli.reports.imap)."""
    _check_sources(sources)
    summary = import_messages(store, config, _local_messages(sources), kinds, on_outcome, now=now)
    if sources.imap:
        from moxcli.reports.imap import ImapSource, parse_url

        url = parse_url(sources.imap)
        with ImapSource(url, config, sources.archive_folder, sources.mark_seen) as src:
            remote = import_messages(store, config, src.messages(), kinds, on_outcome, src.after_batch, now=now)
        for k, v in remote.counts.items():
            summary.counts[k] += v
        for k, v in remote.imported_by_kind.items():
            summary.imported_by_kind[k] = summary.imported_by_kind.get(k, 0) + v
        summary.moved, summary.flagged = src.moved, src.flagged
        summary.seconds += remote.seconds
    return summary
