"""Where a command's data directory, config and store come from (global options)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from moxcli.errors import UsageError
from moxcli.values import dataclass, field

if TYPE_CHECKING:
    from moxcli.config import Config
    from moxcli.store import Store

# The store's directory in a data directory (moxcli.store.env.STORE_DIR; not imported from
# there so that commands which never open the store do not load lmdb).
STORE_DIR = "store"

CONFIG_NAME = "moxcli.toml"


def default_data_dir() -> Path:
    """`$MOXCLI_DATA`, else `$XDG_DATA_HOME/moxcli`, else `~/.local/share/moxcli`."""
    env = os.environ.get("MOXCLI_DATA")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "moxcli"


@dataclass
class AppContext:
    data_dir: Path
    config_file: Path | None = None
    _config: Config | None = field(default=None, repr=False)
    # The topmost directory this run created for the store (removed again if the run fails
    # before anything was stored in it: no command leaves directories behind when it fails).
    created_dir: Path | None = field(default=None, repr=False)

    @property
    def config_path(self) -> Path:
        return self.config_file or self.data_dir / CONFIG_NAME

    def config(self, required: bool = False) -> Config:
        """The parsed config; without a file, defaults (unless ``required``)."""
        from moxcli.config import load_config  # not at start-up: commands without a config skip tomllib

        if self._config is None or (required and not self._config.exists):
            self._config = load_config(self.config_path, required=required)
        return self._config

    def require_store(self) -> None:
        """Refuse a data directory that does not exist or holds no store (a typo in --data).

        Commands that only read call this: an empty table for a mistyped directory would look
        like an empty store, and restore is `--data BACKUP`.
        """
        require_store(self.data_dir)

    def open_store(self, readonly: bool = False) -> Store:
        from moxcli.perms import check_data_dir
        from moxcli.store import Store
        from moxcli.store.files import private_dir

        if readonly:
            self.require_store()
        else:
            if self.created_dir is None:
                top = self.data_dir / STORE_DIR
                while not top.parent.exists() and top.parent != top:
                    top = top.parent
                if not top.exists():
                    self.created_dir = top
            private_dir(self.data_dir)
        if readonly:
            store = Store.open(self.data_dir, readonly=True)
        else:  # a writer seals the store when it closes it, up to [store] seal_max_size
            store = Store.open(self.data_dir, seal_max_size=self.config().store.seal_max_size)
        check_data_dir(self.data_dir)
        return store

    def remove_created_dir(self) -> None:
        """After a failed run: remove what open_store created, if nothing was stored in it."""
        top, self.created_dir = self.created_dir, None
        if top is None or not top.exists():
            return
        if (self.data_dir / STORE_DIR / "data.mdb").exists() and not _store_is_empty(self.data_dir):
            return
        import shutil

        shutil.rmtree(top, ignore_errors=True)


def require_store(data_dir: Path) -> None:
    """UsageError (exit 2, code no-data-dir) unless data_dir holds a store."""
    if not (data_dir / STORE_DIR / "data.mdb").exists():
        raise UsageError(
            f"no moxcli data directory at {data_dir} (run `moxcli init`, or check --data)", code="no-data-dir"
        )


def _store_is_empty(data_dir: Path) -> bool:
    """Nothing but what a new store writes by itself (schema_version and created in meta)."""
    from moxcli.store import Store
    from moxcli.store.schema import META, TABLES

    try:
        with Store.open(data_dir, readonly=True) as st, st.read() as tx:
            if any(k not in (b"schema_version", b"created") for k, _ in tx.scan_raw(META)):
                return False
            return not any(next(iter(tx.scan_raw(t)), None) is not None for t in TABLES if t is not META)
    except Exception:
        return False
