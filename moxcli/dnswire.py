"""DNS wire format for the stub resolver's common case, without dnspython's message objects.

Building a query and parsing its answer with dnspython's ``Message`` was about 80 % of the
CPU of ``check domain`` (issue 12). :func:`build_query` writes the query bytes directly
(RFC 1035 §4.1, one question, EDNS0 OPT per RFC 6891 §6.1.2 without DO) and
:func:`parse_reply` reads an answer to it with ``struct``, keeping only what the resolver
uses: header flags, rcode and the answer section's A, AAAA, MX, TXT, TLSA and CNAME records.

:func:`parse_reply` returns None for everything it does not know to be ordinary: a foreign
ID or question, truncation, EDNS options (EDE), an extended rcode, other record types or
classes, compression it does not accept, odd characters in names, trailing bytes. The
caller then parses the same bytes with dnspython, so such answers (and every malformed one)
are handled exactly as before. When it returns a reply, dnspython would have parsed the
bytes without error into the same records (tests/test_dnswire.py checks this on random and
mutated packets). Pure: no I/O.
"""

from __future__ import annotations

import struct
from typing import Any

import dns.ipv6
import dns.name

from moxcli.values import dataclass, field

TYPE_A, TYPE_NS, TYPE_CNAME, TYPE_SOA, TYPE_MX, TYPE_TXT, TYPE_AAAA, TYPE_OPT, TYPE_TLSA = (
    1,
    2,
    5,
    6,
    15,
    16,
    28,
    41,
    52,
)
CLASS_IN = 1
FLAG_QR, FLAG_TC = 0x8000, 0x0200
EDNS_PAYLOAD = 1232

_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_QUESTION = struct.Struct("!HH")
# RFC 6891 §6.1.2: root owner, type OPT, class = UDP payload size, TTL 0 (no DO), no options.
_OPT = b"\x00" + struct.pack("!HHIH", TYPE_OPT, EDNS_PAYLOAD, 0, 0)
# Label bytes dnspython's Name.to_text() prints as they are; names with others take its path.
_PLAIN = frozenset(range(0x21, 0x7F)) - frozenset(b'"().;\\@$')


class ARecord:
    """An A or AAAA record: ``address`` as dnspython's rdata has it."""

    __slots__ = ("address",)

    def __init__(self, address: str) -> None:
        self.address = address

    def to_text(self) -> str:
        return self.address


class MXRecord:
    __slots__ = ("exchange", "preference")

    def __init__(self, preference: int, exchange: dns.name.Name) -> None:
        self.preference = preference
        self.exchange = exchange

    def to_text(self) -> str:
        return f"{self.preference} {self.exchange.to_text()}"


class TXTRecord:
    __slots__ = ("strings",)

    def __init__(self, strings: tuple[bytes, ...]) -> None:
        self.strings = strings

    def to_text(self) -> str:
        return " ".join('"' + s.decode("ascii", errors="replace") + '"' for s in self.strings)


class TLSARecord:
    __slots__ = ("cert", "mtype", "selector", "usage")

    def __init__(self, usage: int, selector: int, mtype: int, cert: bytes) -> None:
        self.usage, self.selector, self.mtype, self.cert = usage, selector, mtype, cert

    def to_text(self) -> str:
        return f"{self.usage} {self.selector} {self.mtype} {self.cert.hex()}"


class CNAMERecord:
    __slots__ = ("target",)

    def __init__(self, target: dns.name.Name) -> None:
        self.target = target

    def to_text(self) -> str:
        return self.target.to_text()


@dataclass
class RRset:
    """Records of one owner and type; ``name`` is the owner in lower case with the final dot
    (dnspython's ``Name.to_text()``), ``ttl`` the smallest TTL of the records (as dnspython)."""

    name: str
    rdtype: int
    ttl: int
    records: list[Any] = field(default_factory=list)


@dataclass
class Reply:
    """What the resolver uses of an answer, from either parser."""

    flags: int
    rcode: int
    answer: list[RRset]
    ede: list[tuple[int, str]] = field(default_factory=list)

    def find(self, name: str, rdtype: int) -> RRset | None:
        """The answer RRset of ``name`` (lower case, final dot) and ``rdtype``."""
        for rrset in self.answer:
            if rrset.rdtype == rdtype and rrset.name == name:
                return rrset
        return None


def name_wire(name: dns.name.Name) -> bytes:
    """Uncompressed wire form of an absolute name (RFC 1035 §3.1)."""
    return b"".join(bytes((len(label),)) + label for label in name.labels)


def build_query(qid: int, flags: int, qname_wire: bytes, qtype: int) -> bytes:
    """The bytes of one IN question with an EDNS0 OPT record, as dnspython's
    ``make_query(qname, qtype, use_edns=0, payload=1232, want_dnssec=False)`` renders them."""
    return _HEADER.pack(qid, flags, 1, 0, 0, 1) + qname_wire + _QUESTION.pack(qtype, CLASS_IN) + _OPT


def _name(wire: bytes, off: int, end: int) -> tuple[list[bytes], int] | None:
    """Labels (without the root) and the offset after the name; None for anything dnspython
    would reject or print escaped. Pointers must point strictly backwards (as in dnspython)."""
    labels: list[bytes] = []
    after = -1
    biggest = off
    length = 1
    while True:
        if off >= end:
            return None
        count = wire[off]
        if count == 0:
            off += 1
            break
        if count < 64:
            label = wire[off + 1 : off + 1 + count]
            if off + 1 + count > end or not _PLAIN.issuperset(label):
                return None
            labels.append(label)
            length += count + 1
            if length > 255:
                return None
            off += 1 + count
        elif count >= 192:
            if off + 1 >= end:
                return None
            target = ((count & 0x3F) << 8) | wire[off + 1]
            if target >= biggest:
                return None
            if after < 0:
                after = off + 2
            biggest = target
            off = target
        else:
            return None
    return labels, (after if after >= 0 else off)


def _text(labels: list[bytes]) -> str:
    return (b".".join(labels).decode("ascii") + ".").lower() if labels else "."


def _rdata(wire: bytes, rdtype: int, off: int, end: int) -> Any:
    """One answer record's data (``wire[off:end]``), or None when dnspython's path must judge."""
    n = end - off
    if rdtype == TYPE_A:
        return ARecord(".".join(map(str, wire[off:end]))) if n == 4 else None
    if rdtype == TYPE_AAAA:
        return ARecord(dns.ipv6.inet_ntoa(wire[off:end])) if n == 16 else None
    if rdtype in (TYPE_MX, TYPE_CNAME):
        start = off + 2 if rdtype == TYPE_MX else off
        if start > end:
            return None
        parsed = _name(wire, start, end)
        if parsed is None or parsed[1] != end:
            return None
        name = dns.name.Name([*parsed[0], b""])
        if rdtype == TYPE_CNAME:
            return CNAMERecord(name)
        return MXRecord((wire[off] << 8) | wire[off + 1], name)
    if rdtype == TYPE_TXT:
        strings = []
        while off < end:
            count = wire[off]
            if off + 1 + count > end:
                return None
            strings.append(wire[off + 1 : off + 1 + count])
            off += 1 + count
        return TXTRecord(tuple(strings)) if strings else None
    if rdtype == TYPE_TLSA:
        return TLSARecord(wire[off], wire[off + 1], wire[off + 2], wire[off + 3 : end]) if n >= 3 else None
    return None


def _key(rdtype: int, rd: Any) -> Any:
    """Equality of two records as dnspython's rdataset sees it (names compared case-insensitively)."""
    if rdtype == TYPE_MX:
        return (rd.preference, rd.exchange.to_text().lower())
    if rdtype == TYPE_CNAME:
        return rd.target.to_text().lower()
    if rdtype == TYPE_TXT:
        return rd.strings
    if rdtype == TYPE_TLSA:
        return (rd.usage, rd.selector, rd.mtype, rd.cert)
    return rd.address


def _skip_ok(wire: bytes, rdtype: int, off: int, end: int) -> bool:
    """An authority or additional record whose data dnspython would parse without error."""
    if rdtype == TYPE_A:
        return end - off == 4
    if rdtype == TYPE_AAAA:
        return end - off == 16
    if rdtype == TYPE_NS:
        parsed = _name(wire, off, end)
        return parsed is not None and parsed[1] == end
    if rdtype == TYPE_SOA:
        mname = _name(wire, off, end)
        if mname is None:
            return False
        rname = _name(wire, mname[1], end)
        return rname is not None and rname[1] + 20 == end
    return False


def parse_reply(wire: bytes, qid: int, qname: str, qtype: int) -> Reply | None:
    """The reply to query ``qid`` for ``qname`` (lower case, final dot) / ``qtype``, or None
    when the bytes are not an ordinary answer to it (then dnspython's parser decides)."""
    if len(wire) < 12:
        return None
    rid, flags, qd, an, ns, ar = _HEADER.unpack_from(wire)
    # A response (QR) to this QUERY (opcode 0), not truncated, with this one question.
    if rid != qid or flags & (FLAG_QR | 0x7800 | FLAG_TC) != FLAG_QR or qd != 1:
        return None
    size = len(wire)
    parsed = _name(wire, 12, size)
    if parsed is None or parsed[1] + 4 > size:
        return None
    off = parsed[1]
    if _text(parsed[0]) != qname or _QUESTION.unpack_from(wire, off) != (qtype, CLASS_IN):
        return None
    off += 4
    answer: list[RRset] = []
    seen: dict[tuple[str, int], tuple[RRset, set[Any]]] = {}
    rcode = flags & 0xF
    opt = False
    for section, count in ((0, an), (1, ns), (2, ar)):
        for _ in range(count):
            parsed = _name(wire, off, size)
            if parsed is None or parsed[1] + 10 > size:
                return None
            off = parsed[1]
            rdtype, rdclass, ttl, rdlen = _RR.unpack_from(wire, off)
            off += 10
            end = off + rdlen
            if end > size:
                return None
            if rdtype == TYPE_OPT:
                # RFC 6891 §6.1.1: one OPT, owner root, in the additional section. Options
                # (EDE), an extended rcode or another version: dnspython's path.
                if section != 2 or opt or parsed[0] or rdlen or ttl & 0xFFFF0000:
                    return None
                opt = True
            elif rdclass != CLASS_IN:
                return None
            elif section == 0:
                rd = _rdata(wire, rdtype, off, end)
                if rd is None:
                    return None
                key = (_text(parsed[0]), rdtype)
                entry = seen.get(key)
                if entry is None:
                    entry = (RRset(key[0], rdtype, ttl if ttl <= 0x7FFFFFFF else 0), set())
                    seen[key] = entry
                    answer.append(entry[0])
                rrset, keys = entry
                rrset.ttl = min(rrset.ttl, ttl if ttl <= 0x7FFFFFFF else 0)  # RFC 2181 §8, as dnspython
                k = _key(rdtype, rd)
                if k not in keys:  # an rdataset is a set: duplicates collapse
                    keys.add(k)
                    rrset.records.append(rd)
            elif not _skip_ok(wire, rdtype, off, end):
                return None
            off = end
    if off != size:
        return None
    return Reply(flags, rcode, answer)
