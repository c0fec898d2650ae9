"""Schema migrations: each step takes a write transaction on a store at version N to N+1.

Steps run inside the single write transaction of Store.open, so a crash leaves the old
schema intact. Every step gets a fixture under testdata/upgrade/ and a test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moxcli.store.env import Txn


def _seal_records(txn: Txn) -> None:
    """1 -> 2: append the checksum trailer to every record value (index values stay raw).

    The payload is kept byte for byte: a record that was already damaged stays undecodable."""
    from moxcli.store.env import seal
    from moxcli.store.schema import TABLES

    for table in TABLES:
        if table.is_index:
            continue
        keys = [key for key, _ in txn.scan_raw(table)]
        for key in keys:
            raw = txn.get_raw(table, key)
            if raw is not None:
                txn.put_raw(table, key, seal(key, raw))


def _v2_report_dedupe_keys(txn: Txn) -> None:
    """2 -> 3: incoming reports are deduped by key: index every stored TLS and DMARC report.

    Older stores may hold the same report more than once; every copy is kept (no data is
    dropped by an upgrade) and the key points at the oldest, so only new imports are deduped.
    """
    from moxcli.store import dmarc, tlsreports
    from moxcli.store.schema import DMARC_REPORT_IN, TLS_REPORT_IN

    for _, rec in txn.scan(TLS_REPORT_IN):
        tlsreports.index_key(txn, rec["id"], tlsreports.dedupe_key(rec))
    for _, rec in txn.scan(DMARC_REPORT_IN):
        dmarc.index_report_key(txn, rec["id"], dmarc.report_dedupe_key(rec))


# MIGRATIONS[n] upgrades a store from schema n to n+1.
MIGRATIONS: dict[int, Callable[[Txn], None]] = {1: _seal_records, 2: _v2_report_dedupe_keys}


def upgrade(txn: Txn, from_version: int, to_version: int) -> None:
    for version in range(from_version, to_version):
        step = MIGRATIONS.get(version)
        if step is None:
            from moxcli.errors import StoreError

            raise StoreError(f"no migration from schema version {version} to {version + 1}")
        step(txn)
