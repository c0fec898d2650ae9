"""The only code that touches LMDB or knows key layouts.

Features use :class:`Store` transactions with the tables and key functions of
:mod:`moxcli.store.schema`, usually through a typed module of their own in this package.
"""

from moxcli.store.env import Store, StoreNeedsMigration, Txn
from moxcli.store.lock import job_lock

__all__ = ["Store", "StoreNeedsMigration", "Txn", "job_lock"]
