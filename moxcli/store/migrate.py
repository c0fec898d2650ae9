"""Schema migrations: each step takes a write transaction on a store at version N to N+1.

Steps run inside the single write transaction of Store.open, so a crash leaves the old
schema intact. Every step gets a fixture under testdata/upgrade/ and a test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moxcli.store.env import Txn

# MIGRATIONS[n] upgrades a store from schema n to n+1.
MIGRATIONS: dict[int, Callable[[Txn], None]] = {}


def upgrade(txn: Txn, from_version: int, to_version: int) -> None:
    for version in range(from_version, to_version):
        step = MIGRATIONS.get(version)
        if step is None:
            from moxcli.errors import StoreError

            raise StoreError(f"no migration from schema version {version} to {version + 1}")
        step(txn)
