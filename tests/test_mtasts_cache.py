"""The policy cache: Upsert/lookup, the delivery entry point (mox mtastsdb Get) and the
refresher (docs/behaviour-notes.md §4.5, §4.6), with fake DNS and a fake fetcher; time is frozen."""

import random

import pytest
from helpers.dns import FakeResolver

from moxcli.domain import parse_domain
from moxcli.errors import TemporaryError
from moxcli.mtasts import cache, db
from moxcli.mtasts import refresh as refresh_mod
from moxcli.mtasts.cache import STSTemporaryError, list_policies, policy_for_delivery, upsert
from moxcli.mtasts.errors import NoPolicy, PolicyFetch, PolicySyntax
from moxcli.mtasts.fetch import Fetched, FetchOptions
from moxcli.mtasts.policy import parse_policy
from moxcli.mtasts.refresh import refresh
from moxcli.store import Store

NOW = 1_700_000_000.0
POLICY1 = (
    "version: STSv1\nmode: testing\nmx: mx1.example.com\nmx: mx2.example.com\nmx: mx.backup-example.com\n"
    "max_age: 1296000\n"
)
POLICY2 = "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmax_age: 360000\r\n"


def DNS(txt=None, fail=()):
    """TXT records by name, DNSSEC-secure; names in ``fail`` answer SERVFAIL."""
    return FakeResolver(txt, temporary=fail, authentic=True)


class Fetcher:
    """Policies (text) or exceptions by domain; counts calls."""

    def __init__(self, by_domain=None):
        self.by_domain = dict(by_domain or {})
        self.calls = []
        self.timeouts = []

    def __call__(self, resolver, domain, options):
        self.calls.append(domain.ascii)
        self.timeouts.append(options.timeout)
        v = self.by_domain.get(domain.ascii, NoPolicy("no address"))
        if isinstance(v, Exception):
            raise v
        return Fetched(parse_policy(v), v, f"https://mta-sts.{domain.ascii}/.well-known/mta-sts.txt", "text/plain")


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "data")
    yield s


@pytest.fixture
def fetcher(monkeypatch):
    f = Fetcher()
    monkeypatch.setattr(cache, "fetch_policy", f)
    monkeypatch.setattr(refresh_mod, "fetch_policy", f)
    return f


def fetched(text):
    return Fetched(parse_policy(text), text, "", "text/plain")


def test_upsert_and_lookup(store):
    d = parse_domain("example.com")
    assert cache.valid_row(store, d, NOW) is None
    upsert(store, d, "123", fetched(POLICY1), NOW - 10)
    assert cache.valid_row(store, d, NOW).policy.mode == "testing"
    row = upsert(store, d, "124", fetched(POLICY2), NOW)
    assert (row.inserted, row.valid_end, row.last_update, row.last_use, row.backoff, row.record_id) == (
        NOW - 10,
        NOW + 360000,
        NOW,
        NOW,
        False,
        "124",
    )
    assert row.policy.mode == "enforce" and row.policy_text == POLICY2
    other = upsert(store, parse_domain("other.example.com"), "", None, NOW + 1)
    assert (other.valid_end, other.backoff, other.policy.mode, other.policy.max_age, other.policy_text) == (
        NOW + 301,
        True,
        "none",
        300,
        "",
    )
    assert [r.domain for r in list_policies(store)] == ["other.example.com", "example.com"]
    # expired rows are not found, but stay in the table
    assert cache.valid_row(store, d, NOW + 360000) is None
    with store.read() as tx:
        assert db.get(tx, "example.com") is not None


def test_row_roundtrip_keeps_policy(store):
    d = parse_domain("xn--74h.example")
    text = "version: STSv1\nmode: enforce\nmx: *.xn--74h.example\nmax_age: 100\next: x y\n"
    row = upsert(store, d, "1", fetched(text), NOW)
    with store.read() as tx:
        got = db.get(tx, "\u263a.example")
    assert got == row and got.policy.extensions == (("ext", "x y"),)
    assert got.policy.matches_mx("mx.\u263a.example")


def test_first_contact_no_record(store, fetcher):
    out = policy_for_delivery(store, DNS(), "absent.example.com", now=NOW)
    assert out.policy is None and out.fresh and out.result.policy.type == "no-policy-found"
    assert out.result.policy.domain == "absent.example.com" and out.result.details == []
    assert fetcher.calls == [] and list_policies(store) == []


@pytest.mark.parametrize(
    "txt,reason",
    [
        (["v=STSv1; id=1", "v=STSv1; id=2"], "multiple-mta-sts-records"),
        (["v=STSv1; id=a-b"], "record-syntax-error"),
    ],
)
def test_first_contact_bad_record_is_not_cached(store, fetcher, txt, reason):
    out = policy_for_delivery(store, DNS({"_mta-sts.x.example": txt}), "x.example", now=NOW)
    assert out.policy is None and out.fresh and out.result.policy.type == "sts"
    assert [(d.result_type, d.failure_reason_code) for d in out.result.details] == [("sts-policy-fetch-error", reason)]
    assert fetcher.calls == [] and list_policies(store) == []


def test_first_contact_temporary_dns(store, fetcher):
    with pytest.raises(STSTemporaryError) as exc:
        policy_for_delivery(store, DNS(fail={"_mta-sts.t.example"}), "t.example", now=NOW)
    assert isinstance(exc.value, TemporaryError) and exc.value.exit_code == 3
    assert exc.value.result.policy.type == "sts"
    assert exc.value.result.details[0].failure_reason_code == "dns-lookup"
    assert list_policies(store) == []


@pytest.mark.parametrize(
    "err,rtype,reason",
    [
        (NoPolicy("404"), "sts-policy-fetch-error", "no-policy-served"),
        (PolicyFetch("500"), "sts-policy-fetch-error", "cannot-fetch-policy"),
        (PolicyFetch("tls", "certificate-expired"), "sts-webpki-invalid", "certificate-expired"),
        (PolicyFetch("tls", "validation-failure", "x"), "sts-webpki-invalid", "validation-failure+x"),
        (PolicySyntax("bad"), "sts-policy-invalid", "policy-syntax-error"),
    ],
)
def test_first_contact_fetch_failure_stores_backoff(store, fetcher, err, rtype, reason):
    dns = DNS({"_mta-sts.x.example": ["v=STSv1; id=7"]})
    fetcher.by_domain["x.example"] = err
    out = policy_for_delivery(store, dns, "x.example", now=NOW)
    assert out.policy is None and out.fresh and out.error is err and not out.cached
    assert [(d.result_type, d.failure_reason_code, d.failed_session_count) for d in out.result.details] == [
        (rtype, reason, 0)
    ]
    assert out.result.policy.string == [] and out.result.policy.mx_host == []
    (row,) = list_policies(store)
    assert (row.backoff, row.record_id, row.valid_end, row.policy.mode) == (True, "7", NOW + 300, "none")
    # within the back-off: no DNS, no fetch, act as no MTA-STS
    out = policy_for_delivery(store, DNS(), "x.example", now=NOW + 299)
    assert out.policy is None and not out.fresh and out.cached
    assert out.result.details[0].failure_reason_code == "back-off-after-recent-fetch-error"
    assert fetcher.calls == ["x.example"]
    # after it: fetched again
    fetcher.by_domain["x.example"] = POLICY2
    out = policy_for_delivery(store, dns, "x.example", now=NOW + 301)
    assert out.policy.mode == "enforce" and out.fresh and not list_policies(store)[0].backoff


def test_first_contact_success_and_mode_none(store, fetcher):
    dns = DNS({"_mta-sts.example.com": ["v=STSv1; id=124"], "_mta-sts.none.example": ["v=STSv1; id=1"]})
    fetcher.by_domain.update({"example.com": POLICY2, "none.example": "version: STSv1\nmode: none\nmax_age: 100\n"})
    out = policy_for_delivery(store, dns, "example.com", now=NOW)
    assert out.policy.mode == "enforce" and out.fresh and not out.cached
    assert out.policy.matches_mx("mx1.example.com") and not out.policy.matches_mx("mx2.example.com")
    p = out.result.policy
    assert (p.type, p.domain, p.mx_host) == ("sts", "example.com", ["mx1.example.com"])
    assert p.string == ["version: STSv1", "mode: enforce", "mx: mx1.example.com", "max_age: 360000"]
    assert out.result.details == []
    out = policy_for_delivery(store, dns, "none.example", now=NOW)
    assert out.policy.mode == "none" and out.result.policy.type == "no-policy-found"


def test_cached_cases(store, fetcher):
    """The `get` cases of the mtastsdb vector, in order."""
    dns = DNS(
        {"_mta-sts.example.com": ["v=STSv1; id=124"], "_mta-sts.other.example.com": ["v=STSv1; id=1"]},
        fail={"_mta-sts.temperror.example.com"},
    )
    upsert(store, parse_domain("example.com"), "124", fetched(POLICY2), NOW)
    upsert(store, parse_domain("other.example.com"), "", None, NOW)
    t = NOW + 10
    out = policy_for_delivery(store, dns, "example.com", now=t)
    assert out.policy.mode == "enforce" and out.fresh and out.cached and out.result.details == []
    assert list_policies(store)[0].valid_end == NOW + 360000  # not extended
    assert list_policies(store)[0].last_use == t
    out = policy_for_delivery(store, dns, "other.example.com", now=t)
    assert out.policy is None and not out.fresh
    out = policy_for_delivery(store, dns, "absent.example.com", now=t)
    assert out.policy is None and out.fresh
    with pytest.raises(STSTemporaryError):
        policy_for_delivery(store, dns, "temperror.example.com", now=t)
    # id changed, refetch fails: cached policy, fallback detail
    dns.add({"_mta-sts.example.com": ["v=STSv1; id=125"]})
    fetcher.by_domain["example.com"] = PolicyFetch("dial failed")
    out = policy_for_delivery(store, dns, "example.com", now=t)
    assert out.policy.mode == "enforce" and not out.fresh
    assert out.result.details[0].failure_reason_code == "cannot-fetch-policy+fallback-to-cached-policy"
    assert out.result.policy.string[1] == "mode: enforce"
    # record removed: cached policy still used
    dns.remove("_mta-sts.example.com")
    out = policy_for_delivery(store, dns, "example.com", now=t)
    assert out.policy.mode == "enforce" and not out.fresh
    assert out.result.details[0].failure_reason_code == "no-mta-sts-dns-txt-record+fallback-to-cached-policy"
    # DNS down with a cached policy: no error, cached policy
    dns.set_failing("_mta-sts.example.com")
    out = policy_for_delivery(store, dns, "example.com", now=t)
    assert out.policy.mode == "enforce"
    assert out.result.details[0].failure_reason_code == "dns-lookup+fallback-to-cached-policy"
    # id changed and fetch works: new policy stored, valid_end from new max_age
    dns.set_failing("_mta-sts.example.com", False)
    dns.add({"_mta-sts.example.com": ["v=STSv1; id=126"]})
    fetcher.by_domain["example.com"] = POLICY1
    out = policy_for_delivery(store, dns, "example.com", now=t)
    assert out.policy.mode == "testing" and out.fresh and not out.cached
    row = next(r for r in list_policies(store) if r.domain == "example.com")
    assert (row.record_id, row.valid_end, row.inserted) == ("126", t + 1296000, NOW)


def test_cached_mode_none_record_gone_has_no_fallback_suffix(store, fetcher):
    upsert(store, parse_domain("n.example"), "1", fetched("version: STSv1\nmode: none\nmax_age: 1000\n"), NOW)
    out = policy_for_delivery(store, DNS(), "n.example", now=NOW + 1)
    assert out.result.details[0].failure_reason_code == "no-mta-sts-dns-txt-record"


def test_cached_without_text_is_refetched(store, fetcher):
    d = parse_domain("old.example")
    row = upsert(store, d, "1", fetched(POLICY2), NOW)
    store.update(lambda tx: db.put(tx, type(row)(**{**vars(row), "policy_text": ""})))
    fetcher.by_domain["old.example"] = POLICY2
    out = policy_for_delivery(store, DNS({"_mta-sts.old.example": ["v=STSv1; id=1"]}), "old.example", now=NOW + 1)
    assert fetcher.calls == ["old.example"] and out.fresh


def test_policy_string_falls_back_to_formatted_policy(store):
    row = upsert(store, parse_domain("f.example"), "1", fetched(POLICY1), NOW)
    row.policy_text = ""
    assert cache.policy_lines(row) == [
        "version: STSv1",
        "mode: testing",
        "max_age: 1296000",  # as mox writes a policy: max_age before the mx lines
        "mx: mx1.example.com",
        "mx: mx2.example.com",
        "mx: mx.backup-example.com",
    ]


def test_invalid_domain_is_usage_error(store):
    with pytest.raises(Exception) as exc:
        policy_for_delivery(store, DNS(), "bad..domain")
    assert exc.value.exit_code == 2


def _row(store, domain, last_update, last_use, record_id="1", text=POLICY2):
    row = upsert(store, parse_domain(domain), record_id, fetched(text), last_update)
    row.last_use = last_use
    store.update(lambda tx: db.put(tx, row))


def test_refresh_vector(store, fetcher):
    T = NOW
    H = 3600
    _row(store, "mox.example", T, T)
    _row(store, "stale.mox.example", T, T - 181 * 86400)
    _row(store, "refresh.mox.example", T - 24 * H, T - 179 * 86400)
    _row(store, "policyok.mox.example", T - 24 * H, T)
    _row(store, "policybad.mox.example", T - 24 * H, T)
    dns = DNS(
        {
            f"_mta-sts.{d}.mox.example": ["v=STSv1; id=" + i]
            for d, i in [("refresh", "1"), ("policyok", "2"), ("policybad", "2")]
        }
    )
    fetcher.by_domain["policyok.mox.example"] = POLICY1
    fetcher.by_domain["policybad.mox.example"] = PolicyFetch("http status 500")
    sleeps = []
    clock = [T]

    def sleep(s):
        sleeps.append(s)
        clock[0] += s

    done = refresh(store, dns, spread=3 * H, now=lambda: clock[0], sleep=sleep, rng=random.Random(1))
    actions = {r.domain: r.action for r in done}
    assert actions == {
        "stale.mox.example": "deleted-unused",
        "refresh.mox.example": "extended",
        "policyok.mox.example": "updated",
        "policybad.mox.example": "error",
    }
    assert len(sleeps) == 2 and all(0 < s <= 2.25 * H for s in sleeps)
    assert sum(sleeps) <= 3 * H + 0.75 * H
    rows = {r.domain: r for r in list_policies(store)}
    assert "stale.mox.example" not in rows and rows["mox.example"].last_update == T
    ok = rows["policyok.mox.example"]
    assert (ok.policy.mode, ok.record_id, ok.backoff, ok.policy_text) == ("testing", "2", False, POLICY1)
    assert ok.valid_end == ok.last_update + 1296000
    ref = rows["refresh.mox.example"]
    assert ref.valid_end == ref.last_update + 360000 and ref.last_update > T - 24 * H
    bad = rows["policybad.mox.example"]
    assert (bad.last_update, bad.record_id) == (T - 24 * H, "1")
    assert sorted(fetcher.calls) == ["policybad.mox.example", "policyok.mox.example"]


def test_refresh_mode_none(store, fetcher):
    T = NOW
    none = "version: STSv1\nmode: none\nmax_age: 1000\n"
    _row(store, "gone.example", T - 86400, T, text=none)
    _row(store, "dnsdown.example", T - 86400, T, text=none)
    _row(store, "enforced.example", T - 86400, T)
    dns = DNS(fail={"_mta-sts.dnsdown.example", "_mta-sts.enforced.example"})
    fetcher.by_domain["enforced.example"] = POLICY2
    done = refresh(store, dns, spread=0, now=lambda: T)
    actions = {r.domain: r.action for r in done}
    assert actions == {
        "gone.example": "deleted-no-record",
        "dnsdown.example": "unchanged",
        "enforced.example": "updated",
    }
    rows = {r.domain: r for r in list_policies(store)}
    assert set(rows) == {"dnsdown.example", "enforced.example"}
    assert rows["enforced.example"].record_id == "1"  # lookup failed: id kept


def test_refresh_loses_race_to_delivery(store, fetcher, monkeypatch):
    T = NOW
    _row(store, "race.example", T - 86400, T)
    dns = DNS({"_mta-sts.race.example": ["v=STSv1; id=1"]})
    real = refresh_mod.lookup_record

    def lookup_then_delivery_updates(resolver, d):
        r = real(resolver, d)
        upsert(store, d, "9", fetched(POLICY1), T - 5)
        return r

    monkeypatch.setattr(refresh_mod, "lookup_record", lookup_then_delivery_updates)
    (r,) = refresh(store, dns, spread=0, now=lambda: T)
    assert r.action == "unchanged"
    assert list_policies(store)[0].record_id == "9"


@pytest.mark.parametrize(
    "given,first,refetch",
    [(300.0, 300.0, 30.0), (45.0, 45.0, 30.0), (5.0, 5.0, 5.0)],
    ids=["refetch-capped", "first-contact-as-given", "as-given"],
)
def test_fetch_timeouts(store, fetcher, given, first, refetch):
    """A first fetch waits the configured deadline ([mtasts] fetch_timeout), a refetch with a
    cached policy at most 30 s."""
    dns = DNS({"_mta-sts.x.example": ["v=STSv1; id=1"]})
    fetcher.by_domain["x.example"] = POLICY2
    policy_for_delivery(store, dns, "x.example", FetchOptions(timeout=given), now=NOW)
    dns.add({"_mta-sts.x.example": ["v=STSv1; id=2"]})
    policy_for_delivery(store, dns, "x.example", FetchOptions(timeout=given), now=NOW + 1)
    assert fetcher.timeouts == [first, refetch]


def test_temporary_error_carries_its_cause(store, fetcher):
    with pytest.raises(STSTemporaryError) as exc:
        policy_for_delivery(store, DNS(fail={"_mta-sts.t.example"}), "t.example", now=NOW)
    cause = exc.value.cause
    assert type(cause).__name__ == "DNSLookupError" and cause.exit_code == 3
    assert str(exc.value) == str(cause) != ""


def test_a_domain_object_is_taken_as_is(store, fetcher):
    """The queue passes parsed domains: the same outcome as for the name."""
    out = policy_for_delivery(store, DNS(), parse_domain("absent.example.com"), now=NOW)
    assert (out.result.policy.type, out.result.policy.domain) == ("no-policy-found", "absent.example.com")
    assert (out.record, out.record_text, out.fetched, out.row) == (None, "", None, None)


def test_backoff_row_is_an_sts_v1_none_policy(store):
    row = upsert(store, parse_domain("b.example"), "9", None, NOW)
    assert (row.policy.version, row.policy.mode, row.policy.max_age, row.policy.mx) == ("STSv1", "none", 300, ())


# Every outcome of policy_for_delivery: (cached, fresh) and the counts of its sts result (0: delivery adds them).
OUTCOMES = [
    # cached policy, record unchanged
    ("unchanged", {"_mta-sts.c.example": ["v=STSv1; id=1"]}, (), None, (True, True, "sts")),
    # cached policy, record gone: the cached policy stays in force
    ("record-gone", {}, (), None, (True, False, "sts")),
    # cached policy, record lookup fails temporarily
    ("dns-down", {}, ("_mta-sts.c.example",), None, (True, False, "sts")),
    # cached policy, new id, refetch fails
    ("refetch-fails", {"_mta-sts.c.example": ["v=STSv1; id=2"]}, (), PolicyFetch("500"), (True, False, "sts")),
    # cached policy, new id, refetched
    ("refetched", {"_mta-sts.c.example": ["v=STSv1; id=2"]}, (), POLICY1, (False, True, "sts")),
]


@pytest.mark.parametrize("name,txt,fail,fetch,want", OUTCOMES, ids=[o[0] for o in OUTCOMES])
def test_cached_outcomes(store, fetcher, name, txt, fail, fetch, want):
    upsert(store, parse_domain("c.example"), "1", fetched(POLICY2), NOW)
    if fetch is not None:
        fetcher.by_domain["c.example"] = fetch
    out = policy_for_delivery(store, DNS(txt, fail=fail), "c.example", now=NOW + 1)
    assert (out.cached, out.fresh, out.result.policy.type) == want
    assert (out.result.success, out.result.failure) == (0, 0)


def test_first_contact_mode_none_is_fresh_and_not_cached(store, fetcher):
    fetcher.by_domain["n.example"] = "version: STSv1\nmode: none\nmax_age: 100\n"
    out = policy_for_delivery(store, DNS({"_mta-sts.n.example": ["v=STSv1; id=1"]}), "n.example", now=NOW)
    assert (out.fresh, out.cached, out.result.policy.type, out.record.id) == (True, False, "no-policy-found", "1")
    assert out.record_text == "v=STSv1; id=1"


def test_dnssec_failure_keeps_the_exit_code_of_its_cause(store, fetcher):
    """A bogus record (DNSSEC validation failed) is not temporary: exit 1, as its cause."""
    with pytest.raises(STSTemporaryError) as exc:
        policy_for_delivery(store, FakeResolver(bogus=["_mta-sts.b.example"]), "b.example", now=NOW)
    assert (exc.value.exit_code, exc.value.cause.exit_code) == (1, 1)
    assert exc.value.result.details[0].failure_reason_code == "dns-extended-error-6-dnssec-bogus"
