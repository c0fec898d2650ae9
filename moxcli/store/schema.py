"""Every record type in the store: its table, key layout and record version.

One LMDB environment holds one named database ("table") per record type. Values are
msgpack maps carrying their record version under ``_v``, followed by a 4-byte CRC-32 of key
and map (schema 2; ``env.seal``): a damaged record is detected, not read; new optional fields need no version bump
(readers use defaults), a changed meaning does (and a step in ``migrate.py``).

Keys are built for the range scans the features need. Text parts are UTF-8 and separated by
NUL (domains and addresses never contain NUL); integers are 8-byte big-endian so they sort.
"""

from __future__ import annotations

import struct

from moxcli.values import dataclass

# Bump when a record's meaning changes; add the step to migrate.MIGRATIONS.
# 2: every record value (not index values) ends with a CRC-32 of key and payload (env.seal).
# 3: dedupe-key indexes of incoming TLS and DMARC reports (TLS_REPORT_IN_BY_KEY, DMARC_REPORT_IN_BY_KEY).
SCHEMA_VERSION = 3

SEP = b"\x00"


TEXT, U64, RAW = "text", "u64", "raw"


@dataclass(frozen=True)
class KeyPart:
    """One part of a key: TEXT (UTF-8, parts separated by NUL), U64 (8-byte big-endian, so
    it sorts) or RAW (bytes of a fixed meaning, the whole key)."""

    name: str
    kind: str = TEXT


@dataclass(frozen=True)
class Table:
    """A record type: its table, record version, key layout and, for an index table, what
    its raw value is (index tables hold raw values, not records)."""

    name: str
    version: int
    key: tuple[KeyPart, ...]
    value: str | None = None
    note: str = ""

    @property
    def is_index(self) -> bool:
        return self.value is not None

    @property
    def int_parts(self) -> tuple[int, ...]:
        """Positions of the u64 parts (for split_key)."""
        return tuple(i for i, p in enumerate(self.key) if p.kind == U64)

    @property
    def key_layout(self) -> str:
        """The layout as text, for messages: ``account NUL mailbox id (u64) -> value``."""
        text = " NUL ".join(p.name + (f" ({p.kind})" if p.kind != TEXT else "") for p in self.key)
        return text + (f" -> {self.value}" if self.value is not None else "") + (f": {self.note}" if self.note else "")


def _k(*parts: str | tuple[str, str]) -> tuple[KeyPart, ...]:
    return tuple(KeyPart(p) if isinstance(p, str) else KeyPart(*p) for p in parts)


META = Table("meta", 1, _k("name (ascii)"), note="schema_version, created, sequence counters seq:<name>, job state")
TLS_RESULT = Table("tlsresult", 1, _k("day_utc(YYYYMMDD)", "policy_domain", "recipient_domain"))
TLS_RESULT_BY_RCPT = Table(
    "tlsresult_rcpt", 1, _k("day_utc", "recipient_domain", "policy_domain"), value="send_report flag (1 byte)"
)
TLS_SUPPRESS = Table("tlssuppress", 1, _k("reporting address (lower-case)"))
TLS_REPORT_IN = Table("tlsreportin", 1, _k(("id", U64)))
TLS_REPORT_IN_BY_DOMAIN = Table("tlsreportin_domain", 1, _k("policy_domain", ("id", U64)), value="empty")
TLS_REPORT_IN_BY_KEY = Table("tlsreportin_key", 1, _k(("sha256 of the report's dedupe key", RAW)), value="id (u64)")
DMARC_EVAL = Table("dmarceval", 1, _k("policy_domain", ("id", U64)))
DMARC_SUPPRESS = Table("dmarcsuppress", 1, _k("reporting address (lower-case)"))
DMARC_REPORT_IN = Table("dmarcreportin", 1, _k(("id", U64)))
DMARC_REPORT_IN_BY_DOMAIN = Table("dmarcreportin_domain", 1, _k("policy_domain", ("id", U64)), value="empty")
DMARC_REPORT_IN_BY_KEY = Table("dmarcreportin_key", 1, _k(("sha256 of the report's dedupe key", RAW)), value="id (u64)")
MTASTS_POLICY = Table("mtasts", 1, _k("domain (unicode name)"))
QUEUE = Table("queue", 1, _k(("id", U64)))
ACCOUNT = Table("account", 1, _k("account name"))
MAILBOX = Table("mailbox", 1, _k("account", ("mailbox id", U64)))
MAILBOX_BY_NAME = Table("mailbox_name", 1, _k("account", "mailbox name"), value="mailbox id (u64)")
MESSAGE = Table("message", 1, _k("account", ("mailbox id", U64), ("uid", U64)))
RECIPIENT_DOMAIN_TLS = Table("rcptdomaintls", 1, _k("recipient domain (unicode name)"))

TABLES: tuple[Table, ...] = (
    META,
    TLS_RESULT,
    TLS_RESULT_BY_RCPT,
    TLS_SUPPRESS,
    TLS_REPORT_IN,
    TLS_REPORT_IN_BY_DOMAIN,
    TLS_REPORT_IN_BY_KEY,
    DMARC_EVAL,
    DMARC_SUPPRESS,
    DMARC_REPORT_IN,
    DMARC_REPORT_IN_BY_DOMAIN,
    DMARC_REPORT_IN_BY_KEY,
    MTASTS_POLICY,
    QUEUE,
    ACCOUNT,
    MAILBOX,
    MAILBOX_BY_NAME,
    MESSAGE,
    RECIPIENT_DOMAIN_TLS,
)
TABLES_BY_NAME = {t.name: t for t in TABLES}

_U64 = struct.Struct(">Q")


def u64(n: int) -> bytes:
    return _U64.pack(n)


def from_u64(b: bytes) -> int:
    return _U64.unpack(b)[0]


def text_key(*parts: str | int) -> bytes:
    """Join parts into a key: str as UTF-8, int as u64, NUL between."""
    out = []
    for p in parts:
        if isinstance(p, int):
            out.append(u64(p))
        else:
            b = p.encode("utf-8")
            if SEP in b:
                raise ValueError(f"key part contains NUL: {p!r}")
            out.append(b)
    return SEP.join(out)


def prefix_key(*parts: str | int) -> bytes:
    """A key prefix that matches every key starting with these whole parts."""
    return text_key(*parts) + SEP


def split_key(key: bytes, ints: tuple[int, ...] = ()) -> list[str | int]:
    """Inverse of text_key for keys whose int parts sit at the given positions.

    u64 parts may contain NUL bytes, so they are cut by length rather than by separator.
    """
    parts: list[str | int] = []
    pos = 0
    index = 0
    while pos <= len(key):
        if index in ints:
            parts.append(from_u64(key[pos : pos + 8]))
            pos += 9
        else:
            end = key.find(SEP, pos)
            if end < 0:
                end = len(key)
            parts.append(key[pos:end].decode("utf-8"))
            pos = end + 1
        index += 1
    return parts
