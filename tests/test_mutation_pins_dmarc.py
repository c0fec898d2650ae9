"""The DMARC aggregate report XML, byte for byte, in both formats (RFC 7489 Appendix C, RFC 9990 §3).

Written from the survivors of scripts/mutation.sh on moxcli/dmarc/report.py (`record_xml` could
return "" unnoticed). The expected documents were checked by hand against the element order and
omission rules: RFC 7489 Appendix C (p, sp, pct, fo and envelope_from required; IPv6 in the full
eight-group form), RFC 9990 §3 (namespace, one <error>, generator, no pct, selector required,
at most one spf with only scope mfrom, reasons outside §3.1.6 kept as "other" with the comment).
"""

from __future__ import annotations

import pytest

from moxcli import values
from moxcli.dmarc.report import (
    DKIMAuth,
    Feedback,
    Metadata,
    Published,
    Reason,
    Record,
    SPFAuth,
    build_xml,
    record_xml,
    source_ip_text,
)

RECORD = Record(
    "2001:db8::1",
    3,
    "none",
    "pass",
    "fail",
    "example.org",
    envelope_from="",
    envelope_to="to.example",
    reasons=[Reason("forwarded", "via list"), Reason("sampled_out"), Reason("local_policy", "x<y&z>\x01")],
    dkim_auth=[DKIMAuth("example.org", "pass", "", ""), DKIMAuth("b.example", "fail", "s1", "bad sig")],
    spf_auth=[SPFAuth("example.org", "pass", "mfrom"), SPFAuth("helo.example", "none", "helo")],
)
FULL = Feedback(
    Metadata("org", "e@x", "id1", 10, 20, "http://c", ["e1", "e2"], "gen"),
    Published("example.org", "reject", "none", "100", "r", "s", "1", "quarantine", "y", "psl"),
    [RECORD],
)
BARE = Feedback(Metadata("org", "e@x", "id1", 10, 20), Published("example.org", "reject"), [])

RECORD_7489 = (
    "<record>\n"
    "\t<row>\n"
    "\t\t<source_ip>2001:db8:0:0:0:0:0:1</source_ip>\n"
    "\t\t<count>3</count>\n"
    "\t\t<policy_evaluated>\n"
    "\t\t\t<disposition>none</disposition>\n"
    "\t\t\t<dkim>pass</dkim>\n"
    "\t\t\t<spf>fail</spf>\n"
    "\t\t\t<reason>\n"
    "\t\t\t\t<type>forwarded</type>\n"
    "\t\t\t\t<comment>via list</comment>\n"
    "\t\t\t</reason>\n"
    "\t\t\t<reason>\n"
    "\t\t\t\t<type>sampled_out</type>\n"
    "\t\t\t</reason>\n"
    "\t\t\t<reason>\n"
    "\t\t\t\t<type>local_policy</type>\n"
    "\t\t\t\t<comment>x&lt;y&amp;z&gt;�</comment>\n"
    "\t\t\t</reason>\n"
    "\t\t</policy_evaluated>\n"
    "\t</row>\n"
    "\t<identifiers>\n"
    "\t\t<envelope_to>to.example</envelope_to>\n"
    "\t\t<envelope_from></envelope_from>\n"
    "\t\t<header_from>example.org</header_from>\n"
    "\t</identifiers>\n"
    "\t<auth_results>\n"
    "\t\t<dkim>\n"
    "\t\t\t<domain>example.org</domain>\n"
    "\t\t\t<result>pass</result>\n"
    "\t\t</dkim>\n"
    "\t\t<dkim>\n"
    "\t\t\t<domain>b.example</domain>\n"
    "\t\t\t<selector>s1</selector>\n"
    "\t\t\t<result>fail</result>\n"
    "\t\t\t<human_result>bad sig</human_result>\n"
    "\t\t</dkim>\n"
    "\t\t<spf>\n"
    "\t\t\t<domain>example.org</domain>\n"
    "\t\t\t<scope>mfrom</scope>\n"
    "\t\t\t<result>pass</result>\n"
    "\t\t</spf>\n"
    "\t\t<spf>\n"
    "\t\t\t<domain>helo.example</domain>\n"
    "\t\t\t<scope>helo</scope>\n"
    "\t\t\t<result>none</result>\n"
    "\t\t</spf>\n"
    "\t</auth_results>\n"
    "</record>"
)

RECORD_9990 = (
    "<record>\n"
    "\t<row>\n"
    "\t\t<source_ip>2001:db8::1</source_ip>\n"
    "\t\t<count>3</count>\n"
    "\t\t<policy_evaluated>\n"
    "\t\t\t<disposition>none</disposition>\n"
    "\t\t\t<dkim>pass</dkim>\n"
    "\t\t\t<spf>fail</spf>\n"
    "\t\t\t<reason>\n"
    "\t\t\t\t<type>other</type>\n"
    "\t\t\t\t<comment>forwarded: via list</comment>\n"
    "\t\t\t</reason>\n"
    "\t\t\t<reason>\n"
    "\t\t\t\t<type>other</type>\n"
    "\t\t\t\t<comment>sampled_out</comment>\n"
    "\t\t\t</reason>\n"
    "\t\t\t<reason>\n"
    "\t\t\t\t<type>local_policy</type>\n"
    "\t\t\t\t<comment>x&lt;y&amp;z&gt;�</comment>\n"
    "\t\t\t</reason>\n"
    "\t\t</policy_evaluated>\n"
    "\t</row>\n"
    "\t<identifiers>\n"
    "\t\t<envelope_to>to.example</envelope_to>\n"
    "\t\t<header_from>example.org</header_from>\n"
    "\t</identifiers>\n"
    "\t<auth_results>\n"
    "\t\t<dkim>\n"
    "\t\t\t<domain>example.org</domain>\n"
    "\t\t\t<selector></selector>\n"
    "\t\t\t<result>pass</result>\n"
    "\t\t</dkim>\n"
    "\t\t<dkim>\n"
    "\t\t\t<domain>b.example</domain>\n"
    "\t\t\t<selector>s1</selector>\n"
    "\t\t\t<result>fail</result>\n"
    "\t\t\t<human_result>bad sig</human_result>\n"
    "\t\t</dkim>\n"
    "\t\t<spf>\n"
    "\t\t\t<domain>example.org</domain>\n"
    "\t\t\t<scope>mfrom</scope>\n"
    "\t\t\t<result>pass</result>\n"
    "\t\t</spf>\n"
    "\t</auth_results>\n"
    "</record>"
)

FULL_7489 = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<feedback>\n"
    "\t<version>1.0</version>\n"
    "\t<report_metadata>\n"
    "\t\t<org_name>org</org_name>\n"
    "\t\t<email>e@x</email>\n"
    "\t\t<extra_contact_info>http://c</extra_contact_info>\n"
    "\t\t<report_id>id1</report_id>\n"
    "\t\t<date_range>\n"
    "\t\t\t<begin>10</begin>\n"
    "\t\t\t<end>20</end>\n"
    "\t\t</date_range>\n"
    "\t\t<error>e1</error>\n"
    "\t\t<error>e2</error>\n"
    "\t</report_metadata>\n"
    "\t<policy_published>\n"
    "\t\t<domain>example.org</domain>\n"
    "\t\t<adkim>r</adkim>\n"
    "\t\t<aspf>s</aspf>\n"
    "\t\t<p>reject</p>\n"
    "\t\t<sp>none</sp>\n"
    "\t\t<pct>100</pct>\n"
    "\t\t<fo>1</fo>\n"
    "\t</policy_published>\n"
    "\t<record>\n"
    "\t\t<row>\n"
    "\t\t\t<source_ip>2001:db8:0:0:0:0:0:1</source_ip>\n"
    "\t\t\t<count>3</count>\n"
    "\t\t\t<policy_evaluated>\n"
    "\t\t\t\t<disposition>none</disposition>\n"
    "\t\t\t\t<dkim>pass</dkim>\n"
    "\t\t\t\t<spf>fail</spf>\n"
    "\t\t\t\t<reason>\n"
    "\t\t\t\t\t<type>forwarded</type>\n"
    "\t\t\t\t\t<comment>via list</comment>\n"
    "\t\t\t\t</reason>\n"
    "\t\t\t\t<reason>\n"
    "\t\t\t\t\t<type>sampled_out</type>\n"
    "\t\t\t\t</reason>\n"
    "\t\t\t\t<reason>\n"
    "\t\t\t\t\t<type>local_policy</type>\n"
    "\t\t\t\t\t<comment>x&lt;y&amp;z&gt;�</comment>\n"
    "\t\t\t\t</reason>\n"
    "\t\t\t</policy_evaluated>\n"
    "\t\t</row>\n"
    "\t\t<identifiers>\n"
    "\t\t\t<envelope_to>to.example</envelope_to>\n"
    "\t\t\t<envelope_from></envelope_from>\n"
    "\t\t\t<header_from>example.org</header_from>\n"
    "\t\t</identifiers>\n"
    "\t\t<auth_results>\n"
    "\t\t\t<dkim>\n"
    "\t\t\t\t<domain>example.org</domain>\n"
    "\t\t\t\t<result>pass</result>\n"
    "\t\t\t</dkim>\n"
    "\t\t\t<dkim>\n"
    "\t\t\t\t<domain>b.example</domain>\n"
    "\t\t\t\t<selector>s1</selector>\n"
    "\t\t\t\t<result>fail</result>\n"
    "\t\t\t\t<human_result>bad sig</human_result>\n"
    "\t\t\t</dkim>\n"
    "\t\t\t<spf>\n"
    "\t\t\t\t<domain>example.org</domain>\n"
    "\t\t\t\t<scope>mfrom</scope>\n"
    "\t\t\t\t<result>pass</result>\n"
    "\t\t\t</spf>\n"
    "\t\t\t<spf>\n"
    "\t\t\t\t<domain>helo.example</domain>\n"
    "\t\t\t\t<scope>helo</scope>\n"
    "\t\t\t\t<result>none</result>\n"
    "\t\t\t</spf>\n"
    "\t\t</auth_results>\n"
    "\t</record>\n"
    "</feedback>"
)

FULL_9990 = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">\n'
    "\t<version>1.0</version>\n"
    "\t<report_metadata>\n"
    "\t\t<org_name>org</org_name>\n"
    "\t\t<email>e@x</email>\n"
    "\t\t<extra_contact_info>http://c</extra_contact_info>\n"
    "\t\t<report_id>id1</report_id>\n"
    "\t\t<date_range>\n"
    "\t\t\t<begin>10</begin>\n"
    "\t\t\t<end>20</end>\n"
    "\t\t</date_range>\n"
    "\t\t<error>e1; e2</error>\n"
    "\t\t<generator>gen</generator>\n"
    "\t</report_metadata>\n"
    "\t<policy_published>\n"
    "\t\t<domain>example.org</domain>\n"
    "\t\t<discovery_method>psl</discovery_method>\n"
    "\t\t<p>reject</p>\n"
    "\t\t<sp>none</sp>\n"
    "\t\t<np>quarantine</np>\n"
    "\t\t<adkim>r</adkim>\n"
    "\t\t<aspf>s</aspf>\n"
    "\t\t<fo>1</fo>\n"
    "\t\t<testing>y</testing>\n"
    "\t</policy_published>\n"
    "\t<record>\n"
    "\t\t<row>\n"
    "\t\t\t<source_ip>2001:db8::1</source_ip>\n"
    "\t\t\t<count>3</count>\n"
    "\t\t\t<policy_evaluated>\n"
    "\t\t\t\t<disposition>none</disposition>\n"
    "\t\t\t\t<dkim>pass</dkim>\n"
    "\t\t\t\t<spf>fail</spf>\n"
    "\t\t\t\t<reason>\n"
    "\t\t\t\t\t<type>other</type>\n"
    "\t\t\t\t\t<comment>forwarded: via list</comment>\n"
    "\t\t\t\t</reason>\n"
    "\t\t\t\t<reason>\n"
    "\t\t\t\t\t<type>other</type>\n"
    "\t\t\t\t\t<comment>sampled_out</comment>\n"
    "\t\t\t\t</reason>\n"
    "\t\t\t\t<reason>\n"
    "\t\t\t\t\t<type>local_policy</type>\n"
    "\t\t\t\t\t<comment>x&lt;y&amp;z&gt;�</comment>\n"
    "\t\t\t\t</reason>\n"
    "\t\t\t</policy_evaluated>\n"
    "\t\t</row>\n"
    "\t\t<identifiers>\n"
    "\t\t\t<envelope_to>to.example</envelope_to>\n"
    "\t\t\t<header_from>example.org</header_from>\n"
    "\t\t</identifiers>\n"
    "\t\t<auth_results>\n"
    "\t\t\t<dkim>\n"
    "\t\t\t\t<domain>example.org</domain>\n"
    "\t\t\t\t<selector></selector>\n"
    "\t\t\t\t<result>pass</result>\n"
    "\t\t\t</dkim>\n"
    "\t\t\t<dkim>\n"
    "\t\t\t\t<domain>b.example</domain>\n"
    "\t\t\t\t<selector>s1</selector>\n"
    "\t\t\t\t<result>fail</result>\n"
    "\t\t\t\t<human_result>bad sig</human_result>\n"
    "\t\t\t</dkim>\n"
    "\t\t\t<spf>\n"
    "\t\t\t\t<domain>example.org</domain>\n"
    "\t\t\t\t<scope>mfrom</scope>\n"
    "\t\t\t\t<result>pass</result>\n"
    "\t\t\t</spf>\n"
    "\t\t</auth_results>\n"
    "\t</record>\n"
    "</feedback>"
)

BARE_7489 = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<feedback>\n"
    "\t<version>1.0</version>\n"
    "\t<report_metadata>\n"
    "\t\t<org_name>org</org_name>\n"
    "\t\t<email>e@x</email>\n"
    "\t\t<report_id>id1</report_id>\n"
    "\t\t<date_range>\n"
    "\t\t\t<begin>10</begin>\n"
    "\t\t\t<end>20</end>\n"
    "\t\t</date_range>\n"
    "\t</report_metadata>\n"
    "\t<policy_published>\n"
    "\t\t<domain>example.org</domain>\n"
    "\t\t<p>reject</p>\n"
    "\t\t<sp></sp>\n"
    "\t\t<pct></pct>\n"
    "\t\t<fo></fo>\n"
    "\t</policy_published>\n"
    "</feedback>"
)

BARE_9990 = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">\n'
    "\t<version>1.0</version>\n"
    "\t<report_metadata>\n"
    "\t\t<org_name>org</org_name>\n"
    "\t\t<email>e@x</email>\n"
    "\t\t<report_id>id1</report_id>\n"
    "\t\t<date_range>\n"
    "\t\t\t<begin>10</begin>\n"
    "\t\t\t<end>20</end>\n"
    "\t\t</date_range>\n"
    "\t</report_metadata>\n"
    "\t<policy_published>\n"
    "\t\t<domain>example.org</domain>\n"
    "\t\t<p>reject</p>\n"
    "\t</policy_published>\n"
    "</feedback>"
)


def test_record_xml_rfc7489():
    assert record_xml(RECORD) == RECORD_7489
    assert record_xml(RECORD, "rfc7489") == RECORD_7489


def test_record_xml_rfc9990():
    assert record_xml(RECORD, "rfc9990") == RECORD_9990


@pytest.mark.parametrize(
    "fb,fmt,want",
    [
        (FULL, "rfc7489", FULL_7489),
        (FULL, "rfc9990", FULL_9990),
        (BARE, "rfc7489", BARE_7489),
        (BARE, "rfc9990", BARE_9990),
    ],
    ids=["full-7489", "full-9990", "bare-7489", "bare-9990"],
)
def test_build_xml(fb, fmt, want):
    assert build_xml(fb, fmt) == want.encode()


def test_build_xml_default_format_is_rfc7489():
    assert build_xml(FULL) == FULL_7489.encode()


def test_record_inside_the_document_is_record_xml():
    indented = "\n".join("\t" + line for line in RECORD_7489.split("\n"))
    assert indented in FULL_7489


def test_unknown_format():
    with pytest.raises(ValueError) as exc:
        build_xml(FULL, "rfc1")
    assert str(exc.value) == "unknown report format 'rfc1'"


@pytest.mark.parametrize(
    "ip,rfc7489,rfc9990",
    [
        ("::ffff:192.0.2.1", "192.0.2.1", "192.0.2.1"),
        ("2001:db8::1", "2001:db8:0:0:0:0:0:1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8:0:0:0:0:0:1", "2001:db8::1"),
        ("::", "0:0:0:0:0:0:0:0", "::"),
        ("192.0.2.1", "192.0.2.1", "192.0.2.1"),
        ("not-ip", "not-ip", "not-ip"),
    ],
)
def test_source_ip_text(ip, rfc7489, rfc9990):
    assert (source_ip_text(ip, "rfc7489"), source_ip_text(ip, "rfc9990")) == (rfc7489, rfc9990)


@pytest.mark.parametrize(
    "text,want",
    [
        ("a\x00b\x08\x0b\x0c\x0e\x1f\ufffe\uffff", "a\ufffdb\ufffd\ufffd\ufffd\ufffd\ufffd\ufffd\ufffd"),
        ("tab\tnl\ncr\r", "tab\tnl\ncr\r"),
        ("<&>\"'", "&lt;&amp;&gt;\"'"),
    ],
)
def test_text_escaping(text, want):
    r = Record("192.0.2.1", 1, "none", "pass", "pass", text)
    assert f"<header_from>{want}</header_from>" in record_xml(r)


def test_model_defaults():
    assert Metadata() == Metadata("", "", "", 0, 0, "", [], "")
    assert Published() == Published("", "", "", "", "", "", "", "", "", "")
    assert (Reason("x").comment, SPFAuth("d", "pass").scope) == ("", "")
    assert (DKIMAuth("d", "pass").selector, DKIMAuth("d", "pass").human_result) == ("", "")
    r = Record("192.0.2.1", 1, "none", "pass", "pass", "example.org")
    assert (r.envelope_from, r.envelope_to, r.reasons, r.dkim_auth, r.spf_auth) == ("", "", [], [], [])
    fb = Feedback(Metadata(), Published())
    assert (fb.records, fb.version, fb.namespace, fb.schema) == ([], "", "", "rfc7489")


@pytest.mark.parametrize("reason", ["local_policy", "mailing_list", "other", "policy_test_mode", "trusted_forwarder"])
def test_rfc9990_reasons_are_kept(reason):
    r = Record("192.0.2.1", 1, "none", "pass", "pass", "example.org", reasons=[Reason(reason, "c")])
    assert f"<type>{reason}</type>\n\t\t\t\t<comment>c</comment>" in record_xml(r, "rfc9990")


def test_json_round_trip():
    for fb in (FULL, BARE, Feedback(Metadata(), Published(), [RECORD], "1.0", "urn:ietf:params:xml:ns:dmarc-2.0")):
        d = fb.to_json()
        assert d["schema"] == fb.schema
        assert d["metadata"]["org_name"] == fb.metadata.org_name
        assert d["records"] == [values.asdict(r) for r in fb.records]
        assert Feedback.from_json(d) == fb
    assert Feedback.from_json(FULL.to_json()).records[0].reasons[0] == Reason("forwarded", "via list")
    legacy = {k: v for k, v in FULL.to_json().items() if k not in ("version", "namespace")}
    assert Feedback.from_json(legacy) == FULL  # reports stored before version/namespace were kept
    assert Feedback(Metadata(), Published(), namespace="urn:ietf:params:xml:ns:dmarc-2.0").schema == "rfc9990"
