"""DANE verification of a peer chain against TLSA records (RFC 6698 §2.1, RFC 7671 §5, docs/behaviour-notes.md §5.5).

``verify(chain, records, names, roots, now) -> DANEVerdict`` is what delivery calls after
the handshake (see :func:`moxcli.tlsconn.handshake`), with the usable records and allowed
names from :func:`moxcli.dane.lookup.gather_tlsa` / :func:`moxcli.dane.tlsa.allowed_names`.
Records are tried in order; the first success wins.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.x509 import verification as xv

from moxcli.dane.tlsa import CERT, DANE_EE, DANE_TA, FULL, PKIX_EE, PKIX_TA, TLSA, TLSAError, matches
from moxcli.jsonfmt import Finding, findings_json
from moxcli.tlsconn import VALIDATION_FAILURE, verify_chain
from moxcli.values import dataclass, field


@dataclass
class DANEVerdict:
    """``verified`` with the ``record`` that matched and the chain ``depth`` it matched at.

    Depth 0 is the leaf; a DANE-TA "2 0 0" anchor that the server did not send has depth
    ``len(chain)``. On failure ``result_type``/``reason`` are the RFC 8460 detail mox
    records (`validation-failure` / `dane-no-match[+errors]`, docs/behaviour-notes.md §3.6) and ``errors``
    the per-record problems.
    """

    verified: bool
    record: TLSA | None = None
    depth: int | None = None
    result_type: str = ""
    reason: str = ""
    errors: list[Finding] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "verified": self.verified,
            "record": self.record.record() if self.record else None,
            "depth": self.depth,
            "result_type": self.result_type or None,
            "reason": self.reason or None,
            "errors": findings_json(self.errors),
        }


def _valid_for_any(
    chain: Sequence[x509.Certificate],
    names: Sequence[str],
    anchors: Sequence[x509.Certificate],
    now: _dt.datetime | None,
) -> tuple[list[x509.Certificate] | None, list[str]]:
    """The validated path for the first allowed name that works, else the errors."""
    errs = []
    for name in names:
        try:
            return verify_chain(chain, name, anchors, now), []
        except (xv.VerificationError, ValueError) as exc:
            errs.append(f"{name}: {exc}")
    return None, errs


def _dane_ta(
    r: TLSA, chain: Sequence[x509.Certificate], names: Sequence[str], now: _dt.datetime | None
) -> tuple[int | None, list[str]]:
    anchors: list[tuple[x509.Certificate, int]] = []
    if r.selector == CERT and r.mtype == FULL:
        # RFC 7671 §5.2.2: with "2 0 0" the server may omit the anchor; the record is the anchor.
        try:
            cert = x509.load_der_x509_certificate(r.data)
            depth = next((i for i, c in enumerate(chain) if c == cert), len(chain))
            anchors.append((cert, depth))
        except ValueError:
            pass
    intermediates: list[x509.Certificate] = []
    for i, cert in enumerate(chain):
        if matches(r, cert):
            if all(c != cert for c, _ in anchors):
                anchors.append((cert, i))
            break
        if i > 0:
            intermediates.append(cert)
    if not anchors:
        return None, []
    # RFC 7672 §3.1.2: the leaf must chain to the anchor, with expiry and names checked.
    path, errs = _valid_for_any([chain[0], *intermediates], names, [c for c, _ in anchors], now)
    if path is None:
        return None, errs
    top = path[-1]
    return next((d for c, d in anchors if c == top), anchors[0][1]), []


def verify(
    chain: Sequence[x509.Certificate],
    records: Sequence[TLSA],
    names: Sequence[str],
    roots: Sequence[x509.Certificate] = (),
    now: _dt.datetime | None = None,
) -> DANEVerdict:
    """Verify ``chain`` (leaf first) against ``records``; ``names[0]`` is the SNI name.

    DANE-EE: the leaf must match; names and expiry are not checked (RFC 7672 §3.1.1, §3.2.1).
    DANE-TA: a matching certificate in the chain (or a "2 0 0" record's certificate) is the
    trust anchor; the leaf must validate to it for one of ``names`` (RFC 7672 §3.2.2).
    PKIX-EE/PKIX-TA (not for SMTP) additionally need a PKIX path to ``roots``.
    """
    if not records:
        raise TLSAError("verify requires at least one tlsa record")
    if not chain:
        return DANEVerdict(
            False, None, None, VALIDATION_FAILURE, "dane-no-match", [Finding("no-certificate", "no certificate")]
        )
    errors: list[Finding] = []
    for r in records:
        errs: list[str] = []
        depth: int | None = None
        if r.usage == DANE_EE:
            depth = 0 if matches(r, chain[0]) else None
        elif r.usage == DANE_TA:
            depth, errs = _dane_ta(r, chain, names, now)
        elif r.usage == PKIX_EE:
            if matches(r, chain[0]):
                path, errs = _valid_for_any(chain, names, roots, now)
                depth = 0 if path is not None else None
        elif r.usage == PKIX_TA:
            path, errs = _valid_for_any(chain, names, roots, now)
            if path is not None:
                depth = next((i for i, c in enumerate(path) if matches(r, c)), None)
        if depth is not None:
            return DANEVerdict(True, r, depth)
        errors.extend(Finding("chain-invalid", f"{r.descriptive()}: {e}") for e in errs)
    return DANEVerdict(
        False, None, None, VALIDATION_FAILURE, "dane-no-match+errors" if errors else "dane-no-match", errors
    )
