"""The report writers against the RFC schemas of testdata/schemas for generated inputs (no lab).

tests/test_report_validators.py checks real report mail from the lab; this module checks the
same writers for every combination of known and unknown fields that hypothesis finds:
RFC 8460 report JSON (both the json-module path and the packed fast path of the report job)
against the §4 JSON Schema, and DMARC aggregate XML of every evaluation shape against the
RFC 7489 Appendix C and RFC 9990 Appendix A XSDs.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moxcli.dmarc.evaluation import (
    DKIM_RESULTS,
    OVERRIDE_TYPES,
    SPF_RESULTS,
    SPF_SCOPES,
    parse_evaluation,
)
from moxcli.dmarc.report import Feedback, Metadata, Published, build_xml
from moxcli.reports.dmarc import aggregate_records
from moxcli.tlsrpt import report as rp

SCHEMAS = ROOT / "testdata" / "schemas"


@pytest.fixture(scope="module")
def tls_validator():
    from jsonschema import Draft202012Validator

    schema = json.loads((SCHEMAS / "rfc8460-report.schema.json").read_text())
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def xsd():
    import xmlschema

    return {
        "rfc7489": xmlschema.XMLSchema10(str(SCHEMAS / "rfc7489-appendix-c.xsd")),
        "rfc9990": xmlschema.XMLSchema10(str(SCHEMAS / "rfc9990-appendix-a.xsd")),
    }


# --- RFC 8460 ----------------------------------------------------------------------------

_labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_hosts = st.lists(_labels, min_size=2, max_size=4).map(".".join)
_ips = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)
_details = st.builds(
    rp.FailureDetails,
    result_type=st.sampled_from(rp.RESULT_TYPES),
    sending_mta_ip=st.one_of(st.just(""), _ips),
    receiving_mx_hostname=st.one_of(st.just(""), _hosts),
    receiving_mx_helo=st.one_of(st.just(""), _hosts.map(lambda h: f"{h} ESMTP ready")),
    receiving_ip=st.one_of(st.just(""), _ips),
    failed_session_count=st.integers(0, 1000),
    additional_information=st.one_of(st.just(""), _hosts.map(lambda h: f"https://{h}/why")),
    failure_reason_code=st.one_of(st.just(""), st.sampled_from(["tls-remote-alert-40", "dane-no-match"])),
)
_tlsa = st.tuples(st.integers(0, 3), st.integers(0, 1), st.integers(0, 2), st.binary(min_size=1, max_size=32))


@st.composite
def _results(draw):
    kind = draw(st.sampled_from(rp.POLICY_TYPES))
    domain = draw(_hosts)
    if kind == rp.POLICY_TLSA:
        policy = rp.tlsa_policy(draw(st.lists(_tlsa, max_size=3)), domain)
    elif kind == rp.POLICY_STS:
        mx = draw(st.lists(_hosts.map(lambda h: draw(st.sampled_from(["", "*."])) + h), min_size=1, max_size=3))
        policy = rp.Policy(kind, ["version: STSv1", "mode: enforce", *[f"mx: {m}" for m in mx]], domain, mx)
    else:
        policy = rp.Policy(kind, [], domain, [])
    r = rp.Result(policy, draw(st.integers(0, 10**6)), draw(st.integers(0, 10**6)))
    r.add(0, 0, *draw(st.lists(_details, max_size=4)))
    return r


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_results(), min_size=1, max_size=4))
def test_tls_report_json_matches_rfc8460_schema(tls_validator, results):
    day = datetime(2026, 12, 2, tzinfo=UTC)
    report = rp.Report(
        "mox.example", day, day.replace(hour=23, minute=59, second=59), "postmaster@mox.example", "r1@mox.example"
    )
    report.policies = results
    doc = report.to_json()
    assert [e.message for e in tls_validator.iter_errors(doc)] == []
    # the report job's packed writer produces the same document
    head = {k: v for k, v in doc.items() if k != "policies"}
    packed = json.loads(rp.report_json_text(head, [rp.pack_result(r) for r in results], "\t"))
    assert packed == doc


# --- DMARC -------------------------------------------------------------------------------

_domains = st.sampled_from(["reports.test", "sub.reports.test", "other.example", "xn--74h.example"])


@st.composite
def _evaluation(draw):
    domain = "reports.test"
    ev = {
        "policy_domain": domain,
        "evaluated": "2026-12-03T13:30:00Z",
        "addresses": ["mailto:dmarc@reports.test"],
        "policy_published": {
            "domain": domain,
            "p": draw(st.sampled_from(["none", "quarantine", "reject"])),
            "pct": draw(st.integers(0, 100)),
            "adkim": draw(st.sampled_from(["", "r", "s"])),
            "aspf": draw(st.sampled_from(["", "r", "s"])),
        },
        "source_ip": draw(_ips),
        "disposition": draw(st.sampled_from(["none", "quarantine", "reject"])),
        "aligned_dkim_pass": draw(st.booleans()),
        "aligned_spf_pass": draw(st.booleans()),
        "header_from": draw(_domains),
        "envelope_from": draw(st.one_of(st.just(""), _domains)),
        "envelope_to": draw(st.one_of(st.just(""), _domains)),
        "helo_domain": draw(st.one_of(st.just(""), _domains)),
        "optional": draw(st.booleans()),
        "override_reasons": draw(
            st.lists(
                st.fixed_dictionaries(
                    {"type": st.sampled_from(OVERRIDE_TYPES)}, optional={"comment": st.text(max_size=20)}
                ),
                max_size=3,
            )
        ),
        "dkim_results": draw(
            st.lists(
                st.fixed_dictionaries(
                    {"domain": _domains, "result": st.sampled_from(DKIM_RESULTS)},
                    optional={"selector": st.sampled_from(["s1", "2026a", ""])},
                ),
                max_size=4,
            )
        ),
        "spf_results": draw(
            st.lists(
                st.fixed_dictionaries(
                    {"domain": _domains, "scope": st.sampled_from(SPF_SCOPES), "result": st.sampled_from(SPF_RESULTS)}
                ),
                max_size=1,
            )
        ),
    }
    return parse_evaluation(ev, "generated", now=1_796_400_000)


def _rfc7489_document(xml: bytes) -> ET.Element:
    root = ET.fromstring(xml)
    root.tag = "{http://dmarc.org/dmarc-xml/0.1}feedback"  # see tests/test_report_validators.py
    return root


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_evaluation(), min_size=1, max_size=5), st.lists(st.text(max_size=30), max_size=3))
def test_dmarc_xml_matches_rfc_schemas(xsd, evals, errors):
    for fmt in ("rfc7489", "rfc9990"):
        pp = evals[-1].policy_published
        fb = Feedback(
            Metadata(
                "mail.mox.example",
                "postmaster@mail.mox.example",
                "20261203.14.x@mail.mox.example",
                1,
                2,
                errors=errors,
                generator="moxcli test",
            ),
            Published(pp.domain, pp.p, pp.sp, str(pp.pct), pp.adkim, pp.aspf, discovery_method="psl"),
            aggregate_records(evals, fmt),
        )
        xml = build_xml(fb, fmt)
        doc = _rfc7489_document(xml) if fmt == "rfc7489" else ET.fromstring(xml)
        assert [f"{e.path}: {e.reason}" for e in xsd[fmt].iter_errors(doc)] == [], (fmt, xml.decode())
