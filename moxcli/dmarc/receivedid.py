"""ReceivedID (docs/behaviour-notes.md §0.4): an opaque, unguessable id for a number, used in DMARC report ids.

16-byte block = 8 random bytes of this installation + n as big-endian u64, AES-encrypted
with the installation key, base64url without padding (22 characters). The key material is
`<data>/receivedid.key`: 16-byte AES key + the 8 random bytes, created when missing or bad.
"""

from __future__ import annotations

import base64
import os
import struct
from pathlib import Path

from moxcli.store.files import write_file

KEY_FILE = "receivedid.key"
KEY_SIZE = 24


def load_key(data_dir: Path, create: bool = True) -> bytes:
    """The installation's key material; with ``create=False`` a missing key gives a throwaway one
    (dry runs change nothing)."""
    from moxcli.inputs import read_regular

    path = Path(data_dir) / KEY_FILE
    if os.path.lexists(path):
        key = read_regular(path, 1024, "key file")  # a FIFO or device there is refused, not read
        if len(key) == KEY_SIZE:
            return key
    key = os.urandom(KEY_SIZE)
    if create:
        write_file(path, key, root=data_dir)
    return key


def received_id(key: bytes, n: int) -> str:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    block = key[16:24] + struct.pack(">Q", n)
    enc = Cipher(algorithms.AES(key[:16]), modes.ECB()).encryptor()
    out = enc.update(block) + enc.finalize()
    return base64.urlsafe_b64encode(out).rstrip(b"=").decode()
