"""Message flags and keywords as other mail software stores them (docs/behaviour-notes.md §8.2, §8.3, §8.5).

Pure: no I/O, no moxcli imports. Flags are kept as a bit mask while importing (small records)
and turned into names for the store: IMAP system flags (RFC 9051 2.3.2) and the well-known
keywords mox keeps as flags ($Forwarded, $Junk, $NotJunk, $Phishing, $MDNSent, see the IANA
"IMAP Keywords" registry). Other keywords are lower-case strings.
"""

from __future__ import annotations

SEEN, ANSWERED, FLAGGED, DELETED, DRAFT = 1, 2, 4, 8, 16
FORWARDED, JUNK, NOTJUNK, PHISHING, MDNSENT = 32, 64, 128, 256, 512

# Canonical order of flag names in records and output (mox's Flags order).
FLAG_NAMES: tuple[tuple[int, str], ...] = (
    (SEEN, "\\Seen"),
    (ANSWERED, "\\Answered"),
    (FLAGGED, "\\Flagged"),
    (DELETED, "\\Deleted"),
    (DRAFT, "\\Draft"),
    (FORWARDED, "$Forwarded"),
    (JUNK, "$Junk"),
    (NOTJUNK, "$NotJunk"),
    (PHISHING, "$Phishing"),
    (MDNSENT, "$MDNSent"),
)
_BY_LOWER = {name.lower(): bit for bit, name in FLAG_NAMES}

# §8.2 X-Keywords and §8.3 dovecot-keywords: names (lower-cased) that mean a flag.
_WELL_KNOWN = {
    "forwarded": FORWARDED,
    "$forwarded": FORWARDED,
    "junk": JUNK,
    "$junk": JUNK,
    "notjunk": NOTJUNK,
    "$notjunk": NOTJUNK,
    "nonjunk": NOTJUNK,
    "$nonjunk": NOTJUNK,
    "phishing": PHISHING,
    "$phishing": PHISHING,
    "mdnsent": MDNSENT,
    "$mdnsent": MDNSENT,
}
# Mox's CLI maildir import does not map "$nonjunk" (its web import does); we take both when
# reading what others wrote (liberal), and never write "$nonjunk" ourselves.

_STATUS = {ord("R"): SEEN}
_X_STATUS = {ord("A"): ANSWERED, ord("F"): FLAGGED, ord("T"): DRAFT, ord("D"): DELETED}
_MAILDIR = {"R": ANSWERED, "S": SEEN, "T": DELETED, "D": DRAFT, "F": FLAGGED}  # "P" (passed) ignored
# Mozilla's nsMsgMessageFlags (X-Mozilla-Status is 4 hex digits).
_MOZILLA = ((0x0001, SEEN), (0x0002, ANSWERED), (0x0004, FLAGGED), (0x0008, DELETED), (0x1000, FORWARDED))

_KEYWORD_SPECIALS = set('(){%*"\\]')


def flag_names(mask: int) -> list[str]:
    """Names of the flags in a mask, in canonical order."""
    return [name for bit, name in FLAG_NAMES if mask & bit]


def flags_mask(names: list[str] | tuple[str, ...]) -> int:
    """The mask of flag names (any case); raises ValueError naming an unknown flag."""
    mask = 0
    for name in names:
        bit = _BY_LOWER.get(name.lower())
        if bit is None:
            raise ValueError(f"unknown flag {name!r}")
        mask |= bit
    return mask


def is_keyword(word: str) -> bool:
    """Keyword validity (docs/behaviour-notes.md §8.5, RFC 9051 atom without list-wildcards/resp-specials)."""
    if not word or word in _BY_LOWER:
        return False
    for c in word:
        o = ord(c)
        if o < 0x21 or o > 0x7E or "A" <= c <= "Z" or c in _KEYWORD_SPECIALS:
            return False
    return True


def map_keyword(word: str) -> tuple[int, str | None]:
    """A keyword as another client wrote it: (flag bit, None) or (0, keyword), or (0, None) if invalid."""
    w = word.strip().lower()
    bit = _WELL_KNOWN.get(w) or _BY_LOWER.get(w)
    if bit:
        return bit, None
    return (0, w) if is_keyword(w) else (0, None)


def _header_value(header: bytes, name: bytes, needle: bytes) -> bytes | None:
    """The value of the first header line starting with ``name`` (``needle`` is LF + name;
    case-sensitive, docs/behaviour-notes.md §8.2), with continuation lines joined."""
    if header.startswith(name):
        i = 0
    else:
        i = header.find(needle)
        if i < 0:
            return None
        i += 1
    start = i + len(name)
    end = header.find(b"\n", start)
    while end >= 0 and header[end + 1 : end + 2] in (b" ", b"\t"):
        end = header.find(b"\n", end + 1)
    return header[start : len(header) if end < 0 else end]


_H = {n: (n, b"\n" + n) for n in (b"Status:", b"X-Status:", b"X-Mozilla-Status:", b"X-Keywords:", b"X-Mozilla-Keys:")}


def mbox_header_flags(header: bytes) -> tuple[int, list[str], list[str]]:
    """Flags and keywords from a message header written by an mbox client.

    Returns (flag mask, sorted unique keywords, invalid keywords). Reads Status and X-Status
    (mutt, mox, dovecot), X-Keywords (dovecot, mox), X-Mozilla-Status and X-Mozilla-Keys
    (Thunderbird). Header names are matched case-sensitively as prefixes, like mox.
    """
    mask = 0
    keywords: set[str] = set()
    bad: list[str] = []
    if b"Status:" in header:
        v = _header_value(header, *_H[b"Status:"])
        if v is not None:
            for ch in v:
                mask |= _STATUS.get(ch, 0)
        v = _header_value(header, *_H[b"X-Status:"])
        if v is not None:
            for ch in v:
                mask |= _X_STATUS.get(ch, 0)
        v = _header_value(header, *_H[b"X-Mozilla-Status:"])
        if v is not None:
            try:
                moz = int(v.strip(), 16)
            except ValueError:
                moz = 0
            for mbit, bit in _MOZILLA:
                if moz & mbit:
                    mask |= bit
    for name, sep in ((b"X-Keywords:", ","), (b"X-Mozilla-Keys:", None)):
        if name not in header:
            continue
        v = _header_value(header, *_H[name])
        if v is None:
            continue
        for word in v.decode("utf-8", "replace").replace("\r", "").replace("\n", "").split(sep):
            if not word.strip():
                continue
            bit, kw = map_keyword(word)
            mask |= bit
            if kw:
                keywords.add(kw)
            elif not bit:
                bad.append(word.strip())
    return mask, sorted(keywords), bad


def parse_dovecot_keywords(text: str) -> tuple[list[str], list[str]]:
    """A maildir's dovecot-keywords file: (names by index, errors). Best effort (docs/behaviour-notes.md §8.3):
    bad lines are reported and skipped, valid ones used; gaps are empty strings."""
    names: dict[int, str] = {}
    errors: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        index, sep, name = line.partition(" ")
        name = name.strip().lower()
        if not sep or not index.isdecimal() or not index.isascii():
            errors.append(f"line {n}: expected '<index> <name>', got {line!r}")
        elif not 0 <= int(index) <= 25:
            errors.append(f"line {n}: index {index} not in 0-25")
        elif int(index) in names:
            errors.append(f"line {n}: duplicate index {index}")
        elif not is_keyword(name) and name not in _BY_LOWER and name not in _WELL_KNOWN:
            errors.append(f"line {n}: invalid keyword {name!r}")
        else:
            names[int(index)] = name
    if not names:
        return [], errors
    return [names.get(i, "") for i in range(max(names) + 1)], errors


def maildir_flags(info: str, dovecot_keywords: list[str] | tuple[str, ...]) -> tuple[int, list[str]]:
    """Flags and keywords of a maildir file name's info part (after ":2,"), docs/behaviour-notes.md §8.3.

    Lower-case letters index the folder's dovecot-keywords (a = 0); missing entries ignored.
    """
    mask = 0
    keywords: set[str] = set()
    for ch in info:
        bit = _MAILDIR.get(ch)
        if bit:
            mask |= bit
        elif "a" <= ch <= "z":
            i = ord(ch) - ord("a")
            if i < len(dovecot_keywords) and dovecot_keywords[i]:
                bit, kw = map_keyword(dovecot_keywords[i])
                mask |= bit
                if kw:
                    keywords.add(kw)
    return mask, sorted(keywords)
