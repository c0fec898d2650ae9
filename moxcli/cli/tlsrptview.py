"""How `moxcli check tlsrpt` shows a check, without click: the command and the fast path of
`check tlsrpt --record TEXT` in moxcli.entry share it."""

from __future__ import annotations

from moxcli.cli import output
from moxcli.errors import EXIT_FAILED, EXIT_OK, EXIT_TEMPORARY

TYPE_CHECKING = False  # not typing's: importing typing costs start-up (docs/development.md, Start-up)
if TYPE_CHECKING:
    from typing import Any


def show(check: Any, fmt: str) -> int:
    """Print the check in ``fmt``; the exit code: 0 valid, 1 not, 3 temporary DNS failure."""
    if fmt == "json":
        output.emit_json(check.to_json())
    else:
        _render(check, fmt)
    if check.temporary:
        return EXIT_TEMPORARY
    if not check.valid:
        return EXIT_FAILED
    return EXIT_OK


def _render(check: Any, fmt: str) -> None:
    from moxcli.tlsrpt.record import uri_scheme

    if fmt != "table":
        rua = check.record.rua if check.record is not None else []
        output.table(None, ["rua", "scheme"], [(u, uri_scheme(u)) for u in rua], fmt)
        _messages(check)
        return
    pairs = []
    if check.name:
        pairs.append(("name", check.name))
        pairs.append(("status", check.status))
    if check.cnames:
        pairs.append(("cnames", " -> ".join(check.cnames)))
    if check.dnssec:
        pairs.append(("dnssec", check.dnssec))
    pairs.append(("record", check.record_text or "(none)"))
    pairs.append(("valid", "yes" if check.valid else "no"))
    output.kv(f"TLSRPT {check.domain.name}" if check.domain.ascii else "TLSRPT record", pairs)
    if check.record is not None:
        output.table(None, ["rua", "scheme"], [(u, uri_scheme(u)) for u in check.record.rua])
        if check.record.extensions:
            output.table(None, ["extension", "value"], check.record.extensions)
    _messages(check)


def _messages(check: Any) -> None:
    """Other TXT records, errors, the fix and warnings: messages on stderr in every format."""
    other = [t for t in check.texts if t != check.record_text]
    for t in other:
        output.info(f"other TXT record: {output.safe(t)}")
    for e in check.errors:
        output.info(f"error: {output.safe(e)}")
    if check.fix is not None:
        output.info(f"fix: publish {check.fix['zone_line']}")
    for w in check.warnings:
        output.warn(w)
