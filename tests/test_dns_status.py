"""NXDOMAIN and NODATA named as such (issue 12 item 2) by `fetch mtasts` (`status`) and
`dmarc lookup` (the error code), from the library and against the lab's DNSSEC resolver."""

import json

import pytest
from helpers.dns import FakeResolver

from moxcli.cli import cli
from moxcli.dmarc.lookup import NoDMARCRecord, lookup_record
from moxcli.domain import parse_domain
from moxcli.mtasts.check import check_live
from moxcli.mtasts.fetch import FetchOptions


@pytest.mark.parametrize(
    "txt, status",
    [
        ({}, "nxdomain"),
        ({"_mta-sts.example.org": "v=spf1 -all"}, "nodata"),  # TXT records, none is MTA-STS
    ],
)
def test_mtasts_record_denials(txt, status):
    check = check_live(FakeResolver(txt), "example.org", FetchOptions(443, ()))
    assert check.status == status and check.to_json()["status"] == status and not check.valid


@pytest.mark.parametrize(
    "txt, code",
    [
        ({}, "nxdomain"),  # neither _dmarc.mail.example.org nor _dmarc.example.org exists
        ({"_dmarc.example.org": "v=spf1 -all"}, "nodata"),  # a name exists, no DMARC record
        ({"_dmarc.mail.example.org": "something else"}, "nodata"),
    ],
)
def test_dmarc_lookup_denial_codes(txt, code):
    with pytest.raises(NoDMARCRecord) as exc:
        lookup_record(FakeResolver(txt), parse_domain("mail.example.org"))
    assert exc.value.code == code


@pytest.mark.lab
def test_cli_against_the_lab(runner, lab_data):
    r = runner.invoke(cli, ["--data", str(lab_data), "fetch", "mtasts", "--json", "nosuch.test"])
    assert r.exit_code == 1 and json.loads(r.stdout)["status"] == "nxdomain"
    r = runner.invoke(cli, ["--data", str(lab_data), "fetch", "mtasts", "--json", "sts.test"])
    assert r.exit_code == 0 and json.loads(r.stdout)["status"] == "ok"
    r = runner.invoke(cli, ["--data", str(lab_data), "dmarc", "lookup", "--json", "nosuch.test"])
    assert r.exit_code == 1 and json.loads(r.stdout)["error"]["code"] == "nxdomain"
