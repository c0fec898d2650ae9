"""Where a command's data directory, config and store come from (global options)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from moxcli.config import Config, load_config
from moxcli.store import Store

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

    @property
    def config_path(self) -> Path:
        return self.config_file or self.data_dir / CONFIG_NAME

    def config(self, required: bool = False) -> Config:
        """The parsed config; without a file, defaults (unless ``required``)."""
        if self._config is None or (required and not self._config.exists):
            self._config = load_config(self.config_path, required=required)
        return self._config

    def open_store(self, readonly: bool = False) -> Store:
        from moxcli.perms import check_data_dir
        from moxcli.store.files import private_dir

        if not readonly:
            private_dir(self.data_dir)
        store = Store.open(self.data_dir, readonly=readonly)
        check_data_dir(self.data_dir)
        return store
