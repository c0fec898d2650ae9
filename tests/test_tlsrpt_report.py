"""moxcli.tlsrpt.report: JSON model, merge, build, liberal parsing (docs/behaviour-notes.md §1.3-1.5)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from conftest import VECTORS
from hypothesis import given, settings
from hypothesis import strategies as st
from rfc8460_form import rfc8460_form

from moxcli.tlsrpt import report as rp

V = json.loads((VECTORS / "tlsrpt_reports.json").read_text())


@pytest.mark.parametrize("sample", V["report_json_samples"], ids=lambda s: s["name"])
def test_report_json_samples(sample):
    rep, warnings = rp.parse_report(sample["json"].encode())
    assert sample["ok"]
    orig = json.loads(sample["json"])
    assert rep.organization_name == orig["organization-name"]
    assert rep.report_id == orig["report-id"]
    assert len(rep.policies) == len(orig["policies"])
    for got, want in zip(rep.policies, orig["policies"], strict=True):
        assert got.policy.type == want["policy"]["policy-type"]
        assert got.policy.string == want["policy"]["policy-string"]
        assert got.policy.domain == want["policy"]["policy-domain"]
        assert got.policy.mx_host == want["policy"].get("mx-host", [])
        assert got.success == want["summary"]["total-successful-session-count"]
        assert got.failure == want["summary"]["total-failure-session-count"]
        assert len(got.details) == len(want.get("failure-details", []))
        for gd, wd in zip(got.details, want.get("failure-details", []), strict=True):
            assert gd.result_type == wd["result-type"]
            assert gd.failed_session_count == wd["failed-session-count"]
            assert gd.receiving_ip == wd.get("receiving-ip", "")
            assert gd.failure_reason_code == wd.get("failure-reason-code", "")
    expect = sample.get("expect", {}).get("date-range")
    if expect:
        assert rp.format_time(rep.start) == expect["start-datetime"]
        assert rp.format_time(rep.end) == expect["end-datetime"]
        assert any("no timezone" in w for w in warnings)
    else:
        assert rp.format_time(rep.start) == orig["date-range"]["start-datetime"]


@pytest.mark.parametrize("case", V["merge_examples"][:1])
def test_merge_vector(case):
    existing = [rp.Result.from_json(r) for r in case["existing"]]
    rp.merge(existing, *[rp.Result.from_json(r) for r in case["add"]])
    assert [r.to_json() for r in existing] == rfc8460_form(case["expect"])


def test_add_clamps_negative_totals():
    case = V["merge_examples"][1]
    r = rp.make_result("sts", "a.example")
    r.add(case["add_success"], case["add_failure"])
    assert (r.success, r.failure) == (0, 1)


def test_merge_policies_order_sensitive_and_appends():
    a = rp.Result(rp.Policy("sts", ["x", "y"], "a.example", ["mx1", "mx2"]), 1, 0)
    b = rp.Result(rp.Policy("sts", ["y", "x"], "a.example", ["mx1", "mx2"]), 1, 0)
    c = rp.Result(rp.Policy("sts", ["x", "y"], "a.example", ["mx2", "mx1"]), 1, 0)
    d = rp.Result(rp.Policy("sts", ["x", "y"], "a.example", ["mx1", "mx2"]), 2, 3)
    out: list[rp.Result] = []
    rp.merge(out, a, b, c, d)
    assert [(r.policy.string, r.policy.mx_host, r.success, r.failure) for r in out] == [
        (["x", "y"], ["mx1", "mx2"], 3, 3),
        (["y", "x"], ["mx1", "mx2"], 1, 0),
        (["x", "y"], ["mx2", "mx1"], 1, 0),
    ]
    # merge copies: the inputs are untouched
    assert (a.success, d.success) == (1, 2)


def test_tlsa_policy_string_sorted():
    ex = V["tlsa_policy_string_example"]
    recs = []
    for text in ex["records"]:
        u, s, m, h = text.split()
        recs.append((int(u), int(s), int(m), bytes.fromhex(h)))
    p = rp.tlsa_policy(recs, "mx.example")
    assert p.string == ex["expect_policy_string"]
    assert p.mx_host == ex["expect_mx_host"]
    assert p.type == rp.POLICY_TLSA


def test_failure_details_json_shape():
    d = rp.FailureDetails(rp.RESULT_STARTTLS_NOT_SUPPORTED, receiving_mx_hostname="mx.example", failed_session_count=1)
    # RFC 8460 §4.4: a field without a value is left out ("" is no IP address, host name or URI)
    assert d.to_json() == {
        "result-type": "starttls-not-supported",
        "receiving-mx-hostname": "mx.example",
        "failed-session-count": 1,
    }
    full = rp.FailureDetails("validation-failure", "192.0.2.1", "mx.example", "mx.example ESMTP", "192.0.2.2", 3,
                             "https://example.org/why", "tls-remote-alert-40")  # fmt: skip
    assert list(full.to_json()) == [
        "result-type",
        "sending-mta-ip",
        "receiving-mx-hostname",
        "receiving-mx-helo",
        "receiving-ip",
        "failed-session-count",
        "additional-information",
        "failure-reason-code",
    ]
    # the packed writer (the report job's fast path) leaves out the same fields
    packed = rp.pack_result(rp.make_result("sts", "a.example", d, full))
    assert json.loads(rp.report_json_text({"x": 1}, [packed], "\t"))["policies"][0]["failure-details"] == [
        d.to_json(),
        full.to_json(),
    ]


def test_report_json_bytes_shape():
    start = datetime(2024, 3, 1, tzinfo=UTC)
    end = datetime(2024, 3, 1, 23, 59, 59, tzinfo=UTC)
    rep = rp.Report(
        "mox.example",
        start,
        end,
        "postmaster@mox.example",
        "20240301.x.example@mox.example",
        [rp.make_result("no-policy-found", "x.example")],
    )
    data = rp.report_json_bytes(rep)
    assert data.endswith(b"}\n")
    assert b'\n\t"organization-name": "mox.example"' in data
    obj = json.loads(data)
    assert list(obj) == ["organization-name", "date-range", "contact-info", "report-id", "policies"]
    assert obj["date-range"] == {"start-datetime": "2024-03-01T00:00:00Z", "end-datetime": "2024-03-01T23:59:59Z"}
    assert obj["policies"][0] == {
        "policy": {"policy-type": "no-policy-found", "policy-string": [], "policy-domain": "x.example", "mx-host": []},
        "summary": {"total-successful-session-count": 0, "total-failure-session-count": 0},
        "failure-details": [],
    }
    again, warnings = rp.parse_report(data)
    assert again.to_json() == obj and warnings == []


QUIRKS = [
    (
        "mx-host string",
        {"mx-host": "mx.example"},
        "is a string",
        lambda r: r.policies[0].policy.mx_host == ["mx.example"],
    ),
    (
        "empty sending-mta-ip",
        {"fd": {"sending-mta-ip": ""}},
        "sending-mta-ip is empty",
        lambda r: r.policies[0].details[0].sending_mta_ip == "",
    ),
    ("contact-info null", {"contact-info": None}, "contact-info is null", lambda r: r.contact_info == ""),
    (
        "no timezone",
        {"start": "2023-01-10T00:00:00"},
        "no timezone",
        lambda r: rp.format_time(r.start) == "2023-01-10T00:00:00Z",
    ),
    (
        "JSON-encoded TLSA string",
        {"tlsa": ['"3 1 1 aabb"']},
        "JSON-encoded",
        lambda r: r.policies[0].policy.string == ["3 1 1 aabb"],
    ),
]


def _doc(mod: dict) -> bytes:
    policy = {
        "policy-type": "sts",
        "policy-string": ["version: STSv1"],
        "policy-domain": "a.example",
        "mx-host": ["mx.a.example"],
    }
    if "mx-host" in mod:
        policy["mx-host"] = mod["mx-host"]
    if "tlsa" in mod:
        policy.update({"policy-type": "tlsa", "policy-string": mod["tlsa"]})
    fd = {
        "result-type": "certificate-expired",
        "sending-mta-ip": "1.2.3.4",
        "receiving-mx-hostname": "mx.a.example",
        "failed-session-count": 1,
    }
    fd.update(mod.get("fd", {}))
    doc = {
        "organization-name": "X",
        "date-range": {
            "start-datetime": mod.get("start", "2023-01-10T00:00:00Z"),
            "end-datetime": "2023-01-10T23:59:59Z",
        },
        "contact-info": mod.get("contact-info", "x@x.example"),
        "report-id": "r1",
        "policies": [
            {
                "policy": policy,
                "summary": {"total-successful-session-count": 1, "total-failure-session-count": 1},
                "failure-details": [fd],
            }
        ],
    }
    return json.dumps(doc).encode()


@pytest.mark.parametrize("name,mod,warning,check", QUIRKS, ids=[q[0] for q in QUIRKS])
def test_quirks_accepted_with_warning(name, mod, warning, check):
    rep, warnings = rp.parse_report(_doc(mod))
    assert check(rep)
    assert len([w for w in warnings if warning in w]) == 1, warnings


def test_clean_report_has_no_warnings():
    _, warnings = rp.parse_report(_doc({}))
    assert warnings == []


def test_keys_case_insensitive_and_trailing_data():
    data = _doc({}).replace(b'"report-id"', b'"Report-ID"') + b"garbage"
    rep, warnings = rp.parse_report(data)
    assert rep.report_id == "r1"
    assert warnings == ["data after the report JSON ignored"]


@pytest.mark.parametrize(
    "data,msg",
    [
        (b"{", "invalid JSON"),
        (b"", "invalid JSON"),
        (b"[" * 100000, "nested deeper"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "nested deeper"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[]", "expected a JSON object"),
        (b'{"policies": {}}', "policies: expected an array"),
        (b'{"date-range": {"start-datetime": "yesterday"}}', "invalid date-time"),
        (b'{"policies": [{"summary": {"total-successful-session-count": "x"}}]}', "expected an integer"),
        (b'{"policies": [{"policy": {"mx-host": [1]}}]}', "array of strings"),
    ],
)
def test_hostile_or_invalid_rejected(data, msg):
    with pytest.raises(rp.ReportError, match=msg):
        rp.parse_report(data)


def test_too_large_rejected():
    with pytest.raises(rp.ReportError, match="larger than"):
        rp.parse_report(b" " * (rp.MAX_JSON_SIZE + 1))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_parse_never_crashes_on_bytes(data):
    try:
        report, warnings = rp.parse_report(data)
    except rp.ReportError:
        return
    assert isinstance(report, rp.Report)
    assert all(isinstance(w, str) for w in warnings)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda c: (
        st.lists(c, max_size=4)
        | st.dictionaries(
            st.sampled_from(["policies", "policy", "summary", "failure-details", "mx-host", "date-range", "x"]),
            c,
            max_size=4,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_parse_never_crashes_on_json_shapes(obj):
    try:
        report, warnings = rp.parse_report(json.dumps(obj).encode())
    except rp.ReportError:
        return
    assert isinstance(report, rp.Report)
    assert all(isinstance(w, str) for w in warnings)


_detail = st.builds(
    rp.FailureDetails,
    st.sampled_from(["certificate-expired", "validation-failure"]),
    st.sampled_from(["", "1.2.3.4"]),
    st.sampled_from(["mx.a.example"]),
    st.sampled_from(["", "mx ESMTP"]),
    st.just("5.6.7.8"),
    st.integers(0, 3),
    st.just(""),
    st.sampled_from(["", "x"]),
)
_result = st.builds(
    rp.Result,
    st.builds(
        rp.Policy,
        st.sampled_from(["sts", "tlsa"]),
        st.lists(st.sampled_from(["a", "b"]), max_size=2),
        st.sampled_from(["a.example", "b.example"]),
        st.lists(st.sampled_from(["m1", "m2"]), max_size=2),
    ),
    st.integers(0, 5),
    st.integers(0, 5),
    st.lists(_detail, max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_result, max_size=8))
def test_packed_merger_equals_merge(results):
    out: list[rp.Result] = []
    rp.merge(out, *results)
    m = rp.PackedMerger()
    for r in results:
        m.add(rp.pack_result(r))
    assert [rp.packed_json(v) for v in m.results] == [r.to_json() for r in out]
    assert [rp.unpack_result(rp.pack_result(r)) for r in out] == out


_text = st.text(st.sampled_from(["a", '"', "\\", "\n", "\t", "\x00", "\x1f", "é", "\u2028", "☺", "/", " "]), max_size=4)
_text_detail = st.builds(rp.FailureDetails, _text, _text, _text, _text, _text, st.integers(0, 10**12), _text, _text)
_text_result = st.builds(
    rp.Result,
    st.builds(rp.Policy, _text, st.lists(_text, max_size=2), _text, st.lists(_text, max_size=2)),
    st.integers(0, 5),
    st.integers(0, 5),
    st.lists(_text_detail, max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_text_result, max_size=4), st.sampled_from([None, 2, "\t", "  "]), _text)
def test_report_json_text_equals_json_dumps(results, indent, name):
    head = {
        "organization-name": name,
        "date-range": {"start-datetime": "s", "end-datetime": "e"},
        "contact-info": "",
        "report-id": name,
    }
    results = results + results[:2]  # repeated policy strings and details: texts remembered
    expected = json.dumps(head | {"policies": [r.to_json() for r in results]}, ensure_ascii=False, indent=indent)
    assert rp.report_json_text(head, [rp.pack_result(r) for r in results], indent) == expected
