"""Mailbox names (docs/behaviour-notes.md §8.5) and maildir++ folder names (modified UTF-7, RFC 3501 5.1.3).

Pure: no I/O. Names are '/'-separated hierarchies stored as records, never used as paths, but
they are still refused when they could be mistaken for one (".", "..", empty elements).
"""

from __future__ import annotations

import base64
import binascii
import unicodedata

# A name is part of LMDB keys (account NUL name, at most 511 bytes with a 200-byte account).
MAX_NAME_BYTES = 300
MAX_LEVELS = 64


class MailboxNameError(ValueError):
    """A mailbox name that cannot be used; the message says why."""


def _is_control(c: str) -> bool:
    o = ord(c)
    return o <= 0x1F or 0x7F <= o <= 0x9F or c in "\u2028\u2029"


def check_mailbox_name(name: str, allow_inbox: bool = True, normalize: bool = True) -> str:
    """The canonical form of a mailbox name, or MailboxNameError.

    Import normalizes to NFC first (like mox's import); the first element "inbox" in any case
    becomes "Inbox".
    """
    if normalize:
        name = unicodedata.normalize("NFC", name)
    elif unicodedata.normalize("NFC", name) != name:
        raise MailboxNameError(f"mailbox name {name!r}: non-unicode-normalized")
    first, sep, rest = name.partition("/")
    if first.lower() == "inbox":
        name = "Inbox" + sep + rest
    if name == "Inbox" and not allow_inbox:
        raise MailboxNameError("special mailbox name Inbox not allowed")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise MailboxNameError(
            f"mailbox name {name[:60]!r}... ({len(name)} characters): longer than {MAX_NAME_BYTES} bytes"
        )
    if name.count("/") >= MAX_LEVELS:
        raise MailboxNameError(f"mailbox name {name[:60]!r}...: more than {MAX_LEVELS} levels")
    if any(_is_control(c) or 0xD800 <= ord(c) <= 0xDFFF for c in name):
        raise MailboxNameError(f"mailbox name {name!r}: control characters not allowed")
    if name.startswith("#"):
        raise MailboxNameError(f"mailbox name {name!r}: mailbox name cannot start with hash")
    for element in name.split("/"):
        if element == "":
            raise MailboxNameError(f"mailbox name {name!r}: empty mailbox name")
        if element in (".", ".."):
            raise MailboxNameError(f'mailbox name {name!r}: "{element}" not allowed')
    return name


def decode_mutf7(text: str) -> str:
    """Decode IMAP modified UTF-7 (RFC 3501 5.1.3): '&' starts base64 of UTF-16BE with ','
    for '/', '-' ends it, '&-' is '&'. Raises MailboxNameError for malformed input."""
    if "&" not in text:
        if not text.isascii():
            raise MailboxNameError(f"folder name {text!r}: not modified UTF-7 (non-ASCII)")
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if not c.isascii():
            raise MailboxNameError(f"folder name {text!r}: not modified UTF-7 (non-ASCII)")
        if c != "&":
            out.append(c)
            i += 1
            continue
        end = text.find("-", i + 1)
        if end < 0:
            raise MailboxNameError(f"folder name {text!r}: unterminated '&' sequence")
        chunk = text[i + 1 : end]
        if not chunk:
            out.append("&")
        else:
            b64 = chunk.replace(",", "/")
            try:
                raw = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
                decoded = raw.decode("utf-16-be")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise MailboxNameError(f"folder name {text!r}: bad modified UTF-7 sequence &{chunk}-") from None
            if not decoded or len(raw) % 2:
                raise MailboxNameError(f"folder name {text!r}: bad modified UTF-7 sequence &{chunk}-")
            out.append(decoded)
        i = end + 1
    return "".join(out)


def maildirpp_folder(dirname: str) -> str | None:
    """The mailbox path ("A/B") of a maildir++ folder directory name (".A.B"), or None if the
    name is not a folder (no leading dot, or "." / ".."). Raises MailboxNameError when the
    name is a folder but not a usable mailbox name."""
    if not dirname.startswith(".") or dirname in (".", ".."):
        return None
    parts = dirname[1:].split(".")
    if any(p == "" for p in parts):
        raise MailboxNameError(f"maildir++ folder {dirname!r}: empty name element")
    names = [decode_mutf7(p) for p in parts]
    if any("/" in n for n in names):
        raise MailboxNameError(f"maildir++ folder {dirname!r}: '/' inside a name element")
    return "/".join(names)
