"""TLSA records (RFC 6698): fields, text forms, usability for SMTP, matching, makerecord.

Pure: no I/O and nothing of moxcli beyond this package. Also the allowed DANE-TA names
(RFC 7672 §3.2.2, mox's GatherTLSANames, docs/behaviour-notes.md §5.4).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from moxcli.values import dataclass

# RFC 6698 §2.1.1, §2.1.2, §2.1.3 and RFC 7218 acronyms (lower-case, as mox prints them).
PKIX_TA, PKIX_EE, DANE_TA, DANE_EE = 0, 1, 2, 3
CERT, SPKI = 0, 1
FULL, SHA2_256, SHA2_512 = 0, 1, 2
USAGE_NAMES = {PKIX_TA: "pkix-ta", PKIX_EE: "pkix-ee", DANE_TA: "dane-ta", DANE_EE: "dane-ee"}
SELECTOR_NAMES = {CERT: "cert", SPKI: "spki"}
MATCH_NAMES = {FULL: "full", SHA2_256: "sha2-256", SHA2_512: "sha2-512"}
_DIGEST_LEN = {SHA2_256: 32, SHA2_512: 64}


class TLSAError(ValueError):
    """A TLSA record text, parameter or PEM input that cannot be used; ``notes`` say what was skipped."""

    def __init__(self, msg: str, notes: Sequence[str] = ()) -> None:
        super().__init__(msg)
        self.notes = list(notes)


@dataclass(frozen=True)
class TLSA:
    usage: int
    selector: int
    mtype: int
    data: bytes

    def record(self) -> str:
        """Zone-file form `3 1 1 <lowercase hex>` (RFC 6698 §2.2)."""
        return f"{self.usage} {self.selector} {self.mtype} {self.data.hex()}"

    def descriptive(self) -> str:
        """`dane-ee(3) spki(1) sha2-256(1) <hex>`, `(unknown)` for unknown values (mox String())."""
        u = USAGE_NAMES.get(self.usage, "(unknown)")
        s = SELECTOR_NAMES.get(self.selector, "(unknown)")
        m = MATCH_NAMES.get(self.mtype, "(unknown)")
        return f"{u}({self.usage}) {s}({self.selector}) {m}({self.mtype}) {self.data.hex()}"

    def __str__(self) -> str:
        return self.record()

    def to_json(self) -> dict[str, Any]:
        return {
            "usage": self.usage,
            "selector": self.selector,
            "mtype": self.mtype,
            "data": self.data.hex(),
            "record": self.record(),
        }


def parse_record(text: str) -> TLSA:
    """Parse `usage selector mtype hex` (hex may be split by spaces, RFC 6698 §2.2)."""
    parts = text.split()
    if len(parts) < 3:
        raise TLSAError(f"tlsa record {text!r}: need usage, selector, matching type and data")
    try:
        nums = [int(p) for p in parts[:3]]
        data = bytes.fromhex("".join(parts[3:]))
    except ValueError:
        raise TLSAError(f"tlsa record {text!r}: not numbers and hex") from None
    if any(not 0 <= n <= 255 for n in nums):
        raise TLSAError(f"tlsa record {text!r}: field out of range 0-255")
    return TLSA(nums[0], nums[1], nums[2], data)


def _parses(selector: int, data: bytes) -> bool:
    try:
        if selector == CERT:
            x509.load_der_x509_certificate(data)
        else:
            serialization.load_der_public_key(data)
        return True
    except (ValueError, TypeError):
        return False


def is_usable(r: TLSA) -> bool:
    """Usable for SMTP (RFC 7672 §3.1.3, RFC 6698 §4.1; docs/behaviour-notes.md §5.2).

    Only DANE-TA(2)/DANE-EE(3) (PKIX usages treated as unusable, as mox does), selector 0/1,
    and association data that fits the matching type: full data must parse, digests must
    have their exact length.
    """
    if r.usage not in (DANE_TA, DANE_EE) or r.selector not in (CERT, SPKI):
        return False
    if r.mtype == FULL:
        return _parses(r.selector, r.data)
    return _DIGEST_LEN.get(r.mtype) == len(r.data)


def usable(records: Sequence[TLSA]) -> list[TLSA]:
    return [r for r in records if is_usable(r)]


def spki_der(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def selected(cert: x509.Certificate, selector: int) -> bytes | None:
    """The bytes a selector picks from a certificate (RFC 6698 §2.1.2)."""
    if selector == CERT:
        return cert.public_bytes(Encoding.DER)
    if selector == SPKI:
        return spki_der(cert)
    return None


def association(data: bytes, mtype: int) -> bytes | None:
    """Apply a matching type (RFC 6698 §2.1.3); None for an unknown type."""
    if mtype == FULL:
        return data
    if mtype == SHA2_256:
        return hashlib.sha256(data).digest()
    if mtype == SHA2_512:
        return hashlib.sha512(data).digest()
    return None


def matches(r: TLSA, cert: x509.Certificate) -> bool:
    """Whether the record's association data is that of ``cert`` (byte-exact)."""
    sel = selected(cert, r.selector)
    if sel is None:
        return False
    assoc = association(sel, r.mtype)
    return assoc is not None and assoc == r.data


def _parse_param(text: str, names: dict[int, str], what: str) -> int:
    t = text.strip().lower()
    for n, name in names.items():
        if t == name:
            return n
    if t.isdigit() and int(t) in names:
        return int(t)
    raise TLSAError(f"bad {what} {text!r}")


def parse_usage(text: str) -> tuple[int, str]:
    """Usage by name or number; an unknown 16-bit number is accepted with a warning (mox)."""
    t = text.strip().lower()
    for n, name in USAGE_NAMES.items():
        if t in (name, str(n)):
            return n, ""
    if t.isdigit() and int(t) < 65536:
        if int(t) > 255:
            raise TLSAError(f"bad usage {text!r}: a TLSA usage is one byte (RFC 6698 §2.1.1)")
        return int(t), f"continuing with unrecognized tlsa usage {int(t)}"
    raise TLSAError(f"bad usage {text!r}")


def parse_selector(text: str) -> int:
    return _parse_param(text, SELECTOR_NAMES, "selector")


def parse_mtype(text: str) -> int:
    return _parse_param(text, MATCH_NAMES, "matchtype")


def _pem_blocks(data: bytes) -> tuple[list[tuple[str, bytes]], bool]:
    """(type, whole PEM block) in order, and whether non-PEM text remained."""
    blocks: list[tuple[str, bytes]] = []
    leftover = False
    rest = data
    while True:
        start = rest.find(b"-----BEGIN ")
        if start < 0:
            leftover = leftover or bool(rest.strip())
            break
        leftover = leftover or bool(rest[:start].strip())
        head_end = rest.find(b"-----", start + 11)
        if head_end < 0:
            leftover = True
            break
        kind = rest[start + 11 : head_end].decode("ascii", errors="replace")
        end_marker = b"-----END " + kind.encode() + b"-----"
        end = rest.find(end_marker, head_end)
        if end < 0:
            leftover = True
            break
        blocks.append((kind, rest[start : end + len(end_marker)]))
        rest = rest[end + len(end_marker) :]
    return blocks, leftover


def make_record(usage: int, selector: int, mtype: int, pem: bytes) -> tuple[TLSA, list[str]]:
    """A TLSA record for the first usable PEM block (mox `dane makerecord`, docs/behaviour-notes.md §5.9).

    Returns the record and the notes about skipped blocks.
    """
    notes: list[str] = []
    blocks, leftover = _pem_blocks(pem)
    sel: bytes | None = None
    for kind, block in blocks:
        try:
            if kind == "CERTIFICATE":
                cert = x509.load_pem_x509_certificate(block)
                sel = selected(cert, selector)
            elif selector != SPKI:
                if kind in ("PUBLIC KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY", "RSA PUBLIC KEY", "PRIVATE KEY"):
                    notes.append(f'skipping pem type "{kind}", certificate is required')
                else:
                    notes.append(f'skipping unrecognized pem type "{kind}"')
                continue
            elif kind in ("PUBLIC KEY", "RSA PUBLIC KEY"):
                key = serialization.load_pem_public_key(block)
                sel = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
            elif kind in ("EC PRIVATE KEY", "RSA PRIVATE KEY", "PRIVATE KEY"):
                priv = serialization.load_pem_private_key(block, password=None)
                sel = priv.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
            else:
                notes.append(f'skipping unrecognized pem type "{kind}"')
                continue
        except (ValueError, TypeError) as exc:
            raise TLSAError(f'parsing pem block "{kind}": {exc}') from None
        if sel is not None:
            break
    if sel is None:
        what = (
            "no certificate found in pem file"
            if selector == CERT
            else "no certificate or public or private key found in pem file"
        )
        raise TLSAError(what + (" (with leftover data from pem file)" if leftover else ""), notes)
    assoc = association(sel, mtype)
    if assoc is None:
        raise TLSAError(f"bad matchtype {mtype}")
    return TLSA(usage, selector, mtype, assoc), notes


def allowed_names(
    have_mx: bool,
    expanded_next_hop_authentic: bool,
    expanded_base_authentic: bool,
    orig_next_hop: str,
    expanded_next_hop: str,
    orig_base: str,
    expanded_base: str,
) -> list[str]:
    """Names a DANE-TA certificate may carry; the first is the SNI (RFC 7672 §3.2.2, docs/behaviour-notes.md §5.4).

    Follows mox's GatherTLSANames including its quirks (documented in docs/behaviour-notes.md §5.4): with MX
    and a secure expanded next hop the unexpanded MX name is accepted too, and the base is
    left out when its expansion was not secure.
    """
    if not have_mx:
        # RFC 7672 §3.2.2: without MX, the CNAME-expanded base and the original next hop.
        if not expanded_base_authentic or orig_base == expanded_base:
            return [orig_base]
        return [expanded_base, orig_base]
    if not expanded_next_hop_authentic:
        # mox quirk: the RFC makes the MX host name the only identifier here.
        return [orig_next_hop]
    names: list[str] = []
    if expanded_base_authentic:
        names.append(expanded_base)
    if orig_base != expanded_base:
        names.append(orig_base)
    names.append(orig_next_hop)
    if expanded_next_hop != orig_next_hop:
        names.append(expanded_next_hop)
    return names
