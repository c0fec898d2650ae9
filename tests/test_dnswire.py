"""moxcli.dnswire: the fast query builder and answer parser agree with dnspython.

Every case compares with dnspython itself: the query bytes must be what ``make_query``
renders, and an answer the fast parser accepts must be one dnspython parses, as a response
to that query, into the same records. Answers the fast parser declines (None) go to
dnspython in moxcli.dns, so declining is always safe; accepting wrongly is not.
"""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moxcli import dnswire
from moxcli.dns import _query_message, _reply_of

QID = 0x1234
RD_AD = dns.flags.RD | dns.flags.AD


def _query(name: str, rdtype: str, flags: int = RD_AD) -> dns.message.Message:
    return _query_message(dns.name.from_text(name), dns.rdatatype.from_text(rdtype), QID, flags)


def _response(name: str, rdtype: str, records: list[tuple[str, str, str]], **kw) -> bytes:
    """A response to ``_query(name, rdtype)`` with (owner, type, rdata text) answer records,
    rendered by dnspython."""
    q = _query(name, rdtype)
    r = dns.message.make_response(q)
    r.flags |= kw.get("flags", dns.flags.AD)
    r.set_rcode(kw.get("rcode", dns.rcode.NOERROR))
    for owner, t, text in records:
        r.answer.append(dns.rrset.from_text(owner, kw.get("ttl", 300), "IN", t, text))
    for owner, t, text in kw.get("authority", []):
        r.authority.append(dns.rrset.from_text(owner, 60, "IN", t, text))
    for owner, t, text in kw.get("additional", []):
        r.additional.append(dns.rrset.from_text(owner, 60, "IN", t, text))
    if "ede" in kw:
        r.use_edns(0, options=[dns.edns.EDEOption(kw["ede"], "x")])
    return r.to_wire()


def _view(rd) -> object:
    """The fields moxcli reads, from a dnspython rdata or a dnswire record."""
    for attrs in (("address",), ("preference", "exchange"), ("strings",), ("usage", "selector", "mtype", "cert")):
        if all(hasattr(rd, a) for a in attrs):
            return tuple(str(getattr(rd, a)) if a == "exchange" else getattr(rd, a) for a in attrs)
    return ("cname", str(rd.target))


def _comparable(reply: dnswire.Reply) -> tuple:
    answer = [(s.name, s.rdtype, s.ttl, [_view(rd) for rd in s.records]) for s in reply.answer]
    return reply.flags, reply.rcode, answer, reply.ede


def _dnspython(wire: bytes, name: str, rdtype: str) -> dnswire.Reply | None:
    """dnspython's reading of ``wire`` as a response to the query, None when it rejects it."""
    try:
        r = dns.message.from_wire(wire)
    except Exception:
        return None
    return _reply_of(r) if _query(name, rdtype).is_response(r) else None


def _fast(wire: bytes, name: str, rdtype: str) -> dnswire.Reply | None:
    return dnswire.parse_reply(wire, QID, name.lower().rstrip(".") + ".", dns.rdatatype.from_text(rdtype))


def _agrees(wire: bytes, name: str, rdtype: str) -> dnswire.Reply | None:
    """The fast reply, after checking that dnspython reads the same from the bytes."""
    fast = _fast(wire, name, rdtype)
    if fast is not None:
        slow = _dnspython(wire, name, rdtype)
        assert slow is not None, wire.hex()
        assert _comparable(fast) == _comparable(slow), wire.hex()
    return fast


@pytest.mark.parametrize(
    ("name", "rdtype", "flags"),
    [
        ("example.com.", "MX", RD_AD),
        ("_25._tcp.mx.Example.ORG.", "TLSA", RD_AD | dns.flags.CD),
        ("_smtp._tls.example.", "TXT", dns.flags.RD),
        (".", "A", dns.flags.RD),
        ("a" * 63 + ".b.", "AAAA", RD_AD),
    ],
)
def test_build_query_is_dnspythons_query(name, rdtype, flags):
    qname = dns.name.from_text(name)
    wire = dnswire.build_query(QID, flags, dnswire.name_wire(qname), dns.rdatatype.from_text(rdtype))
    assert wire == _query(name, rdtype, flags).to_wire()


ACCEPTED = [
    ("d.example.", "MX", [("d.example.", "MX", "10 mx.d.example."), ("d.example.", "MX", "20 MX2.d.example.")], {}),
    ("d.example.", "MX", [("d.example.", "MX", "0 .")], {}),
    ("mx.example.", "A", [("mx.example.", "A", "192.0.2.1"), ("mx.example.", "A", "192.0.2.2")], {}),
    ("mx.example.", "A", [("mx.example.", "A", "192.0.2.1")], {"ttl": 2**31}),  # RFC 2181 §8: taken as 0
    ("mx.example.", "AAAA", [("mx.example.", "AAAA", "2001:db8::1"), ("mx.example.", "AAAA", "::ffff:1.2.3.4")], {}),
    ("t.example.", "TXT", [("t.example.", "TXT", '"v=TLSRPTv1; rua=mailto:a@b" "second"')], {}),
    ("t.example.", "TXT", [("t.example.", "TXT", '""')], {}),
    ("_25._tcp.mx.example.", "TLSA", [("_25._tcp.mx.example.", "TLSA", "3 1 1 " + "ab" * 32)], {}),
    (
        "alias.example.",
        "A",
        [("alias.example.", "CNAME", "Target.example."), ("target.example.", "A", "192.0.2.9")],
        {},
    ),
    ("alias.example.", "CNAME", [("alias.example.", "CNAME", "target.example.")], {}),
    (
        "none.example.",
        "MX",
        [],
        {
            "rcode": dns.rcode.NXDOMAIN,
            "authority": [("example.", "SOA", "ns.example. host.example. 1 2 3 4 5")],
        },
    ),
    (
        "d.example.",
        "MX",
        [("d.example.", "MX", "10 mx.d.example.")],
        {"authority": [("d.example.", "NS", "ns.example.")], "additional": [("mx.d.example.", "A", "192.0.2.1")]},
    ),
    ("d.example.", "MX", [], {"rcode": dns.rcode.SERVFAIL, "flags": 0}),
]


@pytest.mark.parametrize(("name", "rdtype", "records", "kw"), ACCEPTED)
def test_ordinary_answers_are_read_as_dnspython_reads_them(name, rdtype, records, kw):
    wire = _response(name, rdtype, records, **kw)
    fast = _agrees(wire, name, rdtype)
    assert fast is not None
    assert sum(len(s.records) for s in fast.answer) == len(records)


def test_records_carry_the_fields_moxcli_reads():
    fast = _fast(
        _response("d.example.", "MX", [("d.example.", "MX", "10 Mx.Other.example.")], ttl=77), "d.example.", "MX"
    )
    assert fast is not None
    (rrset,) = fast.answer
    assert (rrset.name, rrset.rdtype, rrset.ttl) == ("d.example.", dnswire.TYPE_MX, 77)
    assert rrset.records[0].preference == 10
    assert rrset.records[0].exchange.to_text(omit_final_dot=True) == "Mx.Other.example"


def test_repeated_records_collapse_and_keep_the_smallest_ttl():
    """An rdataset is a set (as in dnspython): the same record twice is one record, and the
    RRset's TTL is the smallest of its records' TTLs."""
    wire = _response("mx.example.", "A", [("mx.example.", "A", "192.0.2.1")], ttl=300)
    header, rest = wire[:12], wire[12:]
    question_end = rest.index(b"\x00\x00\x01\x00\x01") + 5
    rr = rest[question_end : question_end + 16]
    again = rr[:6] + (100).to_bytes(4, "big") + rr[10:]
    wire = (
        header[:6] + (2).to_bytes(2, "big") + header[8:] + rest[:question_end] + rr + again + rest[question_end + 16 :]
    )
    fast = _agrees(wire, "mx.example.", "A")
    assert fast is not None
    assert [(s.ttl, [rd.address for rd in s.records]) for s in fast.answer] == [(100, ["192.0.2.1"])]


def _set_byte(wire: bytes, index: int, value: int) -> bytes:
    return wire[:index] + bytes([value]) + wire[index + 1 :]


MX = _response("d.example.", "MX", [("d.example.", "MX", "10 mx.d.example.")])
DECLINED = {
    "truncated (TC)": _set_byte(MX, 2, MX[2] | 0x02),
    "another id": b"\x43\x21" + MX[2:],
    "not a response": _set_byte(MX, 2, MX[2] & 0x7F),
    "another question": MX.replace(b"\x01d\x07example", b"\x01e\x07example", 1),
    "trailing bytes": MX + b"\x00",
    "cut short": MX[:-3],
    "header only": MX[:12],
    "EDE option": _response("d.example.", "MX", [], rcode=dns.rcode.SERVFAIL, ede=6),
    "other type (DNAME)": _response("d.example.", "MX", [("d.example.", "DNAME", "other.example.")]),
    "escaped label": _response("d.example.", "MX", [("d.example.", "MX", "10 m\\.x.example.")]),
    "forward pointer": MX[:12] + b"\xc0\x20" + MX[12:],
}


@pytest.mark.parametrize("case", sorted(DECLINED))
def test_unusual_answers_are_left_to_dnspython(case):
    assert _fast(DECLINED[case], "d.example.", "MX") is None


def test_declined_cases_are_really_unusual():
    """The test vectors above are what they claim: dnspython rejects or flags them too."""
    assert _dnspython(DECLINED["another id"], "d.example.", "MX") is None
    assert _dnspython(DECLINED["trailing bytes"], "d.example.", "MX") is None
    assert _dnspython(DECLINED["truncated (TC)"], "d.example.", "MX").flags & dns.flags.TC
    assert _dnspython(DECLINED["EDE option"], "d.example.", "MX").ede == [(6, "x")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_garbage_is_never_accepted_wrongly(data):
    _agrees(data, "d.example.", "MX")


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(range(len(ACCEPTED))),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=4),
    st.integers(0, 400),
)
def test_mutated_answers_are_never_accepted_wrongly(case, flips, cut):
    """Bytes changed and the packet cut anywhere: the fast parser never raises, and whatever
    it accepts, dnspython reads the same way."""
    name, rdtype, records, kw = ACCEPTED[case]
    wire = _response(name, rdtype, records, **kw)
    for index, value in flips:
        if index < len(wire):
            wire = _set_byte(wire, index, value)
    _agrees(wire[:cut] if cut < len(wire) else wire, name, rdtype)
