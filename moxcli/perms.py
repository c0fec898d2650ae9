"""Warnings about files others can read: the data directory, the store and DKIM keys.

Mail, keys and report data are private. moxcli creates them 0700/0600, but a directory made
by hand (or a key copied in) may be open to the group or the world, or belong to another
user; each is warned about once per run, as a log line, without refusing to work.
MOXCLI_QUIET_PERMISSIONS=1 silences them where the modes are deliberate (and in the test
suite, whose temporary data directories follow the umask).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from moxcli import log

if TYPE_CHECKING:
    from moxcli.config import Config

_log = log.get("perms")
_warned: set[str] = set()


def check_private(path: Path | str, what: str) -> str | None:
    """Warn (once per path and run) when ``path`` is group/world-accessible or not ours.

    Returns the warning text (None when all is well or already warned)."""
    key = str(path)
    if key in _warned or os.environ.get("MOXCLI_QUIET_PERMISSIONS") == "1":
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    problems = []
    if st.st_mode & 0o077:
        who = "group and others" if st.st_mode & 0o007 else "its group"
        problems.append(f"accessible to {who} (mode {stat.S_IMODE(st.st_mode):04o})")
    if st.st_uid != os.geteuid():
        problems.append(f"owned by uid {st.st_uid}, not by this user (uid {os.geteuid()})")
    if not problems:
        return None
    _warned.add(key)
    fix = "chmod go= " + key if st.st_mode & 0o077 else "chown it to the user running moxcli"
    text = f"{what} {key} is " + " and ".join(problems) + f"; fix: {fix}"
    _log.warn(text)
    return text


def check_data_dir(data_dir: Path) -> None:
    """The data directory and its store."""
    check_private(data_dir, "data directory")
    store = Path(data_dir) / "store"
    check_private(store, "store directory")
    check_private(store / "data.mdb", "store file")


def check_dkim_keys(config: Config) -> None:
    """The DKIM private keys the config names: one others can read lets them sign as the
    domain. Commands that copy or check keys warn without signing anything (backup, import,
    verifydata); signing warns when it reads the key."""
    for domain in config.domains.values():
        for sel in domain.dkim.selectors.values():
            check_private(sel.private_key_file, "DKIM private key")
