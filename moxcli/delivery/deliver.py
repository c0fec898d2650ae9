"""Deliver queued messages: MX selection, MTA-STS and DANE, STARTTLS, retries, DSNs (docs/behaviour-notes.md §3).

``run_queue(store, data_dir, config, ids=None, domain=None, now=None) -> list[AttemptResult]``
attempts every due message (or the given ids / recipient domain, due or not when named by
id), synchronously. Queue records have one recipient each; the due records of one submission
(same ``base_id``) for one recipient domain are delivered together, in one SMTP transaction
with a RCPT per recipient (as mox batches), and each gets its own outcome. Another process
running the queue at the same time is refused (job lock ``queue``).

Crash safety: before its SMTP session an attempt is recorded as begun (attempt count up, next
attempt set by the backoff schedule, ``in_progress`` set) and committed; after it, a write
transaction removes the message (delivered or failed) or stores the deferral, together with
the attempt's TLS results (docs/behaviour-notes.md §2.2). Consecutive attempts share these
commits (:class:`_Book`: one commit records the outcomes so far and begins the next chunk of
up to ``MAX_CHUNK`` batches). A crash leaves every message without a recorded outcome queued,
its attempt counted and its next attempt scheduled (also for the begun ones of the chunk not
yet attempted): nothing is lost. A message is delivered twice only if the crash fell between
the server's final 250 and the commit of its outcome, at most the attempts of one chunk (RFC
5321 §6.1 accepts duplicates over loss; Postfix has the same window).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any

from moxcli import log, stop, tlsconn
from moxcli.config import Config
from moxcli.dane import lookup as dane_lookup
from moxcli.dane import tlsa as dane_tlsa
from moxcli.dane import verify as dane_verify
from moxcli.dane.lookup import Destinations
from moxcli.delivery import dsn as dsnmod
from moxcli.delivery import queue as dq
from moxcli.delivery.tlsresults import AttemptTLS, detail, rows
from moxcli.dns import DNSError, NotFound, Resolver
from moxcli.domain import Domain, parse_domain
from moxcli.errors import UsageError
from moxcli.smtp.client import Client, RcptResult, Reply, SessionGone, SMTPError
from moxcli.store import Store, domaintls, suppress
from moxcli.store import queue as qstore
from moxcli.store.env import Txn
from moxcli.store.files import queue_file, unlink_files
from moxcli.store.lock import job_lock
from moxcli.store.queue import QueueMsg
from moxcli.tlsrpt import resultsdb as tlsstore
from moxcli.tlsrpt.report import (
    POLICY_NO_POLICY_FOUND,
    POLICY_TLSA,
    RESULT_DNSSEC_INVALID,
    RESULT_STARTTLS_NOT_SUPPORTED,
    RESULT_TLSA_INVALID,
    RESULT_VALIDATION_FAILURE,
    Policy,
    Result,
    make_result,
    merge,
    tlsa_policy,
)
from moxcli.values import dataclass, field

if TYPE_CHECKING:
    from moxcli.mtasts.policy import Policy as MTASTSPolicy

_log = log.get("delivery")

MAX_IDLE = 4  # sessions kept open between messages (one per MX host and TLS requirement)
IDLE_QUIT_TIMEOUT = 10.0  # seconds for the reply to QUIT when ending a kept session
DNS_BUDGET = 30.0  # docs/behaviour-notes.md §3.4: DNS + TCP connect per host within 30 s
DELAYED_DSN_AFTER = 5  # failed attempts of a normal message before a "delayed" DSN (mox)

MODE_OPPORTUNISTIC = "opportunistic"
MODE_REQUIRED = "required"  # STARTTLS required (sent even when not announced)
MODE_SKIP = "skip"  # plaintext retry after a TLS failure
# STARTTLS because the recipient domain did STARTTLS at an earlier delivery: no plaintext
# (neither when STARTTLS is not announced nor as a fallback after a TLS failure).
MODE_NO_DOWNGRADE = "no-downgrade"


@dataclass
class AttemptResult:
    """What one attempt did, for `queue run` output (one line / NDJSON object per attempt)."""

    id: int
    recipient: str
    outcome: str  # delivered | deferred | failed
    attempt: int
    host: str = ""
    ip: str = ""
    tls: str = ""  # "", "unverified", "pkix", "dane" ("" = plaintext or not connected)
    code: int = 0
    enhanced: str = ""
    error: str = ""
    remote_reply: str = ""  # the server's reply as sent; "" when code/error are moxcli's own
    next_attempt: float | None = None
    dsn: bool = False
    duration: float = 0.0
    stalled: bool = False  # deferred because the server broke a deadline or a limit (not in JSON)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "recipient": self.recipient,
            "outcome": self.outcome,
            "attempt": self.attempt,
            # docs/json.md: null for unknown or not applicable (no connection, no reply, no TLS)
            "host": self.host or None,
            "ip": self.ip or None,
            "tls": self.tls or None,
            "code": self.code or None,
            "enhanced": self.enhanced or None,
            "error": self.error or None,
            "remote_reply": self.remote_reply or None,
            "next_attempt": None if self.next_attempt is None else datetime.fromtimestamp(self.next_attempt, UTC),
            "dsn": self.dsn,
            "duration": round(self.duration, 3),
        }


@dataclass
class RunTally:
    """How the attempts of one `queue run` ended: its summary line (docs/delivery.md, "Summary line")."""

    delivered: int = 0
    deferred: int = 0  # temporary failures: the message stays queued for a later attempt
    failed: int = 0  # permanent failures and given-up messages (a DSN goes to the sender)
    interrupted: int = 0  # stopped by a signal; not counted as an attempt, due again
    dsns: int = 0  # DSNs stored for the sender: failure DSNs and delay warnings
    stalled: int = 0  # deferred because a server broke a deadline or a reply limit

    def add(self, r: AttemptResult) -> None:
        """Count one attempt's outcome."""
        if r.outcome == "delivered":
            self.delivered += 1
        elif r.outcome == "deferred":
            self.deferred += 1
        elif r.outcome == "failed":
            self.failed += 1
        else:
            self.interrupted += 1
        self.dsns += r.dsn
        self.stalled += r.stalled

    @property
    def messages(self) -> int:
        """Messages the run took up (one output line / NDJSON object each)."""
        return self.delivered + self.deferred + self.failed + self.interrupted


class DeliveryError(Exception):
    """A failed host or message: ``permanent`` decides bounce vs retry; ``tls`` allows fallback."""

    def __init__(
        self,
        msg: str,
        permanent: bool = False,
        code: int = 0,
        enhanced: str = "",
        tls: bool = False,
        remote_reply: str = "",
        stalled: bool = False,
    ) -> None:
        super().__init__(msg)
        self.permanent = permanent
        self.code = code
        self.enhanced = enhanced
        self.tls = tls
        # The reply as the remote server sent it; "" when the error (and its code) is ours.
        self.remote_reply = remote_reply
        self.stalled = stalled  # the server broke a deadline or a reply limit


# ------------------------------------------------------------------------- DNS


class CachingResolver(Resolver):
    """The configured resolver with a cache for one queue run: answers (and not-found answers)
    are kept for their TTL, at most ``max_ttl`` seconds; errors are never cached.

    Messages to the same domain in one run then cost one set of lookups, as they would with a
    caching system resolver (which is what mox relies on).
    """

    max_ttl = 60.0
    negative_ttl = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}

    def query(self, name: str, rdtype: str) -> Any:
        key = (name.lower().rstrip("."), rdtype)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            if isinstance(hit[1], NotFound):
                # A new exception each time: raising one cached instance again and again would
                # grow its traceback (and keep every frame alive) by one entry per raise.
                raise _copy_not_found(hit[1])
            return hit[1]
        try:
            ans = super().query(name, rdtype)
        except NotFound as exc:
            self._cache[key] = (now + self.negative_ttl, _copy_not_found(exc))
            raise
        self._cache[key] = (now + min(float(ans.ttl), self.max_ttl), ans)
        return ans


def _copy_not_found(exc: NotFound) -> NotFound:
    new = NotFound(exc.name, exc.rdtype, exc.nxdomain, exc.authentic, exc.ede)
    new.cnames = list(exc.cnames)
    return new


# ------------------------------------------------------------------------- destinations


def order_ips(ips: list[str], dialed: list[str]) -> list[str]:
    """Spec §3.4: after earlier attempts, try the other address family first; the last dialed
    IP goes first within its family if that family was dialed exactly once (greylisting)."""
    if not dialed:
        return list(ips)
    last = dialed[-1]
    last_v6 = ":" in last
    other = [ip for ip in ips if (":" in ip) != last_v6]
    same = [ip for ip in ips if (":" in ip) == last_v6]
    if sum(1 for d in dialed if (":" in d) == last_v6) == 1 and last in same:
        same.remove(last)
        same.insert(0, last)
    return other + same


# ------------------------------------------------------------------------- one message


@dataclass
class Engine:
    """What an attempt needs besides the message: config, DNS, the store, hooks for tests."""

    config: Config
    resolver: Resolver
    store: Store
    data_dir: Path
    connect: Callable[[str, int, float], socket.socket] = field(
        default=lambda ip, port, timeout: socket.create_connection((ip, port), timeout=timeout)
    )
    # Addresses that could not be connected to in this run: later messages skip them instead of
    # waiting for the same timeout again (a backlog for a dead host would take hours otherwise).
    unreachable: dict[str, str] = field(default_factory=dict)
    # Sessions kept open after a transaction, for the next message to the same MX host with the
    # same TLS requirements (at most MAX_IDLE; RSET before the next transaction).
    idle: dict[tuple[Any, ...], _Idle] = field(default_factory=dict)
    # MTA-STS answers of this run per recipient domain (expiry, policy, result), as DNS answers
    # are cached: the policy cache is read (and its last use written) once, not per message.
    sts: dict[str, tuple[float, MTASTSPolicy | None, Result]] = field(default_factory=dict)
    # When each recipient domain last did STARTTLS (unix time; None: never), as this run knows it:
    # read from the store once per domain per run (not once per message), then set by the run's
    # own deliveries as each attempt ends, before its outcome is committed, so that a later
    # message of the same run is not downgraded to plaintext either (``MODE_NO_DOWNGRADE``).
    # A `domains forget` by another process takes effect at the next run.
    starttls_seen: dict[str, float | None] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.config.network.smtp_port

    def keep(self, key: tuple[Any, ...], client: Client, ip: str, tls: str) -> None:
        """Keep the session for reuse, or end it when it has carried enough transactions."""
        if (
            client.transactions >= self.config.delivery.max_messages_per_connection
            or stop.requested()
            or (key not in self.idle and len(self.idle) >= MAX_IDLE)
        ):
            client.quit(IDLE_QUIT_TIMEOUT)
            return
        old = self.idle.pop(key, None)
        if old is not None:
            old.client.quit(IDLE_QUIT_TIMEOUT)
        self.idle[key] = _Idle(client, ip, tls)

    def close_idle(self) -> None:
        """End the kept sessions: QUIT (after a stop signal without waiting for the reply)."""
        idle, self.idle = list(self.idle.values()), {}
        for i in idle:
            if stop.requested():
                i.client.abort(wait=False)
            else:
                i.client.quit(IDLE_QUIT_TIMEOUT)

    def dial(self, ip: str, timeout: float) -> socket.socket:
        if ip in self.unreachable:
            raise ConnectionError(f"{self.unreachable[ip]} (earlier in this run)")
        try:
            return self.connect(ip, self.port, timeout)
        except OSError as exc:
            self.unreachable[ip] = str(exc.strerror or exc)
            raise


@dataclass
class _Idle:
    client: Client
    ip: str
    tls: str


@dataclass
class _Outcome:
    """The attempt for a batch: ``rcpt`` holds the server's answer per recipient once a
    transaction ran; ``error`` applies to recipients without one."""

    rcpt: dict[str, RcptResult] = field(default_factory=dict)
    error: DeliveryError | None = None
    host: str = ""
    ip: str = ""
    tls: str = ""
    dualstack: bool = False
    dialed: dict[str, list[str]] = field(default_factory=dict)
    interrupted: str = ""  # the stop signal's name when a stop cut the attempt short
    # The session that ran the transaction: STARTTLS used, REQUIRETLS offered (spec §3.7).
    session_tls: bool | None = None
    session_requiretls: bool = False
    ended: float = 0.0  # unix time the attempt ended: the time the domain's record gets


@dataclass
class _HostPlan:
    host: str
    result: Result
    mode: str
    dane_records: list[Any] | None = None
    dane_names: list[str] = field(default_factory=list)
    sni: str = ""
    ips: list[str] = field(default_factory=list)
    dualstack: bool = False
    starttls_before: str = ""  # no-downgrade mode: when the domain last did STARTTLS (RFC 3339)


def _ede_reason(exc: DNSError, prefix: str) -> tuple[str, bool]:
    """(TLSRPT failure reason, DNSSEC failure?): the EDE as mox reports it; without an EDE a
    bogus answer found with CD (moxcli.dns) is ``dnssec-bogus``. Delivery still defers
    (RFC 7672 §2.1.2), but the result says bogus rather than an outage."""
    if exc.bogus:
        return exc.bogus_reason(prefix), True
    ede = exc.ede[0] if exc.ede else None
    if ede is None:
        return "", False
    return f"{prefix}-{ede.reason}", ede.is_authentication


def deliver_message(engine: Engine, msgs: list[QueueMsg], data: bytes, tls: AttemptTLS) -> _Outcome:
    """One attempt for the messages of one submission to one recipient domain: destinations,
    policies, hosts in order (docs/behaviour-notes.md §3.2-§3.7).

    A stop (:class:`moxcli.stop.Interrupted`) ends the session politely and is re-raised with
    the outcome so far as ``partial`` (recipients a finished transaction already answered).
    """
    out = _Outcome(dialed={k: list(v) for k, v in msgs[0].dialed_ips.items()})
    try:
        _deliver(engine, msgs, data, tls, out)
    except stop.Interrupted as exc:
        out.interrupted = exc.signame
        exc.partial = out
        raise
    return out


def _deliver(engine: Engine, msgs: list[QueueMsg], data: bytes, tls: AttemptTLS, out: _Outcome) -> _Outcome:
    msg = msgs[0]
    tls_required_no = msg.require_tls is False
    rcpt_dom = msg.recipient_domain
    if rcpt_dom.startswith("["):
        # Address literal: no MX, no MTA-STS, no DANE, no TLS results (docs/behaviour-notes.md §3.2).
        ip = rcpt_dom[1:-1]
        _try_host(
            engine, msgs, data, _HostPlan(ip, Result(Policy("")), MODE_OPPORTUNISTIC, ips=[ip]), tls, out, enforce=False
        )
        return out
    domain = parse_domain(rcpt_dom)
    dests = dane_lookup.gather_destinations(engine.resolver, domain.ascii)
    if dests.error is not None:
        if dests.error.bogus:
            reason, _ = _ede_reason(dests.error, "dns-extended-error")
            tls.recipient = make_result(POLICY_NO_POLICY_FOUND, domain.ascii)
            tls.recipient.add(0, 1, detail(RESULT_VALIDATION_FAILURE, reason))
        out.error = DeliveryError(
            f"gathering destinations for {domain.ascii}: {dests.error}", permanent=dests.permanent
        )
        return out

    policy, tls.recipient, policy_error = _mtasts(engine, domain, tls_required_no)
    if policy_error is not None:
        tls.recipient.add(0, 1)
        out.error = DeliveryError(f"mta-sts policy for {domain.ascii}: {policy_error}")
        return out
    enforce = policy is not None and policy.mode == "enforce"
    starttls_before = "" if tls_required_no else _starttls_before(engine, rcpt_dom)

    last_error: DeliveryError | None = None
    hosts_5730 = 0
    for host, _pref in dests.hosts:
        if policy is not None and policy.mode != "none" and not policy.matches_mx(host):
            # RFC 8461 §4.1, §5: reported in testing mode too; enforce skips the host.
            tls.recipient.add(0, 0, detail(RESULT_VALIDATION_FAILURE, "mtasts-policy-mx-mismatch", mx_host=host))
            if enforce and not tls_required_no:
                tls.recipient.add(0, 1)
                last_error = DeliveryError(
                    f"mx host {host} does not match enforced mta-sts policy with hosts "
                    f"{', '.join(m.ascii for m in policy.mx)}"
                )
                continue
        plan = _plan_host(engine, msg, domain, dests, host, enforce, tls, starttls_before)
        if isinstance(plan, DeliveryError):
            last_error = plan
            if plan.enhanced == "5.7.30":
                hosts_5730 += 1
            continue
        _try_host(engine, msgs, data, plan, tls, out, enforce=enforce)
        out.dualstack = plan.dualstack
        if out.rcpt:
            # A transaction ran: refusals are the server's answer per recipient, not a host failure.
            return out
        assert out.error is not None
        last_error = out.error
        if out.error.enhanced == "5.7.30":
            hosts_5730 += 1
        if out.error.permanent:
            break
    if hosts_5730 and hosts_5730 == len(dests.hosts):
        # RFC 8689 §4.2.1: no host meets the requirement, the message must not be sent.
        out.error = DeliveryError(
            "destination servers do not support requiretls", permanent=True, code=554, enhanced="5.7.30"
        )
    else:
        out.error = last_error or DeliveryError("no remaining destinations")
    return out


def _starttls_before(engine: Engine, domain: str) -> str:
    """When a delivery to the domain last used STARTTLS (RFC 3339 UTC), "" when none did or
    nothing is known: such a domain is not downgraded to plaintext (``MODE_NO_DOWNGRADE``).
    The time STARTTLS was last seen counts, not the last delivery: a plaintext delivery of a
    ``TLS-Required: No`` message in between does not open the way for the others.

    The store is read once per domain per run (``Engine.starttls_seen``); what the run's own
    deliveries saw is there as soon as each attempt ends (:func:`_note_starttls`)."""
    if domain not in engine.starttls_seen:
        with engine.store.read() as tx:
            known = domaintls.get(tx, domain)
        engine.starttls_seen[domain] = None if known is None else known.starttls_seen
    seen = engine.starttls_seen[domain]
    return "" if seen is None else datetime.fromtimestamp(seen, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _note_starttls(engine: Engine, domain: str, out: _Outcome) -> None:
    """Tell the run's later attempts that the domain did STARTTLS (the same rule as the record
    :func:`_remember_domain` commits later: a transaction ran over STARTTLS)."""
    if out.session_tls and out.rcpt and not domain.startswith("["):
        engine.starttls_seen[domain] = out.ended


def _no_downgrade_error(
    plan: _HostPlan, why: str, code: int = 0, remote_reply: str = "", stalled: bool = False
) -> DeliveryError:
    """The temporary failure of a host that would take the message only in plaintext, from a
    domain that did STARTTLS before. Our finding, not the server's reply, unless the
    server refused STARTTLS (then its reply is kept)."""
    return DeliveryError(
        f"{why}; not delivering in plaintext: the domain did STARTTLS before (last {plan.starttls_before}; "
        "TLS-Required: No in a message allows plaintext, `moxcli domains forget` clears the record)",
        code=code,
        enhanced="4.7.10",  # RFC 5248 registry: X.7.10 Encryption Needed (temporary here)
        remote_reply=remote_reply,
        stalled=stalled,
    )


def _plan_host(
    engine: Engine,
    msg: QueueMsg,
    domain: Domain,
    dests: Destinations,
    host: str,
    enforce: bool,
    tls: AttemptTLS,
    starttls_before: str = "",
) -> _HostPlan | DeliveryError:
    """Spec §3.4: addresses, DANE applicability, TLSA, the REQUIRETLS check; records host results.

    Beyond mox (which keeps the last known STARTTLS support only as a hint for its webmail):
    for a domain that did STARTTLS at an earlier delivery (``starttls_before``), opportunistic TLS
    becomes ``MODE_NO_DOWNGRADE``, so a server that stops offering STARTTLS (or a stripping
    attacker) does not get the message in plaintext."""
    tls_required_no = msg.require_tls is False
    hips = dane_lookup.gather_ips(engine.resolver, host)
    if hips.error is not None:
        exc = hips.error
        if exc.bogus:
            reason, _ = _ede_reason(exc, "dns-extended-error")
            hr = make_result(POLICY_TLSA, host)
            tls.hosts.append(hr)
            tls.both(hr, 0, 1, detail(RESULT_VALIDATION_FAILURE, reason))
        return DeliveryError(f"resolving ips of {host}: {exc}")
    mode = MODE_REQUIRED if enforce else MODE_NO_DOWNGRADE if starttls_before else MODE_OPPORTUNISTIC
    plan = _HostPlan(
        host,
        make_result(POLICY_NO_POLICY_FOUND, host),
        mode,
        sni=host,
        ips=hips.ips,
        dualstack=hips.dualstack,
        starttls_before=starttls_before,
    )
    if dane_lookup.dane_applies(dests, hips):
        expanded_authentic = dests.expanded_authentic and hips.expanded_authentic
        g = dane_lookup.gather_tlsa(engine.resolver, host, expanded_authentic, hips.expanded_host)
        if g.error is not None:
            exc = g.error
            # RFC 7672 §2.1.2: a failed TLSA lookup makes the server unreachable.
            reason, auth = _ede_reason(exc, "extended-dns-error")
            plan.result = Result(tlsa_policy([], host))
            if auth:
                plan.result.add(0, 0, detail(RESULT_DNSSEC_INVALID, reason, mx_host=host))
                tls.hosts.append(plan.result)
                tls.both(plan.result, 0, 1)
            else:
                plan.result.add(0, 0, detail(RESULT_TLSA_INVALID, reason, mx_host=host))
                tls.hosts.append(plan.result)
            if not tls_required_no:
                return DeliveryError(f"dialing smtp server {host}: looking up tlsa records: {exc}")
            return _requiretls_check(msg, plan, enforce)
        if g.dane_required:
            usable = g.usable
            if usable:
                plan.result = Result(tlsa_policy([(r.usage, r.selector, r.mtype, r.data) for r in usable], g.base))
                plan.mode = MODE_REQUIRED
                plan.dane_records = usable
                # In delivery the original TLSA base is the MX host, the expanded one the base used.
                plan.dane_names = dane_tlsa.allowed_names(
                    dests.have_mx,
                    dests.expanded_authentic,
                    expanded_authentic,
                    domain.ascii,
                    dests.expanded_next_hop,
                    host,
                    g.base,
                )
                plan.sni = plan.dane_names[0]
            else:
                # RFC 7672 §2.2: TLS is mandatory but authentication is not.
                plan.result = Result(Policy(POLICY_TLSA, [], g.base, []))
                plan.result.add(
                    0, 0, detail(RESULT_TLSA_INVALID, "all-unusable-records+ignored", mx_host=host, count=0)
                )
                plan.mode = MODE_REQUIRED
        else:
            plan.result = make_result(POLICY_NO_POLICY_FOUND, g.base)
    tls.hosts.append(plan.result)
    return _requiretls_check(msg, plan, enforce)


def _requiretls_check(msg: QueueMsg, plan: _HostPlan, enforce: bool) -> _HostPlan | DeliveryError:
    # mox quirk (stricter than RFC 8689 §4.2.1): REQUIRETLS needs usable DANE or MTA-STS enforce.
    if msg.require_tls is True and not plan.dane_records and not enforce:
        return DeliveryError(f"{plan.host}: missing required tls verification mechanism", code=554, enhanced="5.7.30")
    return plan


def _try_host(
    engine: Engine,
    msgs: list[QueueMsg],
    data: bytes,
    plan: _HostPlan,
    tls: AttemptTLS,
    out: _Outcome,
    enforce: bool,
) -> None:
    """Connect to the host's addresses in order and run the session, with the plaintext
    fallback of docs/behaviour-notes.md §3.7."""
    msg = msgs[0]
    tls_required_no = msg.require_tls is False
    out.error = None
    out.host, out.ip = plan.host, ""
    ips = order_ips(plan.ips, out.dialed.get(plan.host, []))
    key = (plan.host, plan.mode, plan.sni, bool(plan.dane_records), enforce, msg.require_tls, msg.is_dmarc_report)
    idle = engine.idle.pop(key, None)
    if idle is not None and idle.ip in ips and _reuse(engine, key, idle, msgs, data, plan, out):
        return
    sock, ip = None, ""
    per_ip = DNS_BUDGET / max(len(ips), 1)
    errors = []
    for ip in ips:
        try:
            sock = engine.dial(ip, per_ip)
            break
        except OSError as exc:
            errors.append(f"{ip}: {exc.strerror or exc}")
    if sock is None:
        out.error = DeliveryError(f"connecting to {plan.host}: {'; '.join(errors) or 'no addresses'}")
        return
    out.dialed.setdefault(plan.host, []).append(ip)
    out.ip = ip
    try:
        _session(engine, msgs, data, plan, tls, out, sock, enforce, key)
    except DeliveryError as exc:
        out.error = exc
    if out.error is None or not out.error.tls or out.rcpt:
        return
    if plan.mode == MODE_NO_DOWNGRADE:
        e = out.error
        out.error = _no_downgrade_error(plan, str(e), e.code, remote_reply=e.remote_reply, stalled=e.stalled)
        return
    dmarc = msg.is_dmarc_report
    if (not enforce and plan.mode == MODE_OPPORTUNISTIC and not plan.dane_records and not dmarc) or tls_required_no:
        _log.info("tls failed, retrying in plaintext", host=plan.host, err=str(out.error))
        skip = _HostPlan(plan.host, Result(Policy("")), MODE_SKIP, ips=[ip], sni=plan.sni)
        try:
            sock = engine.dial(ip, per_ip)
        except OSError as exc:
            out.error = DeliveryError(f"reconnecting to {plan.host} for plaintext: {exc.strerror or exc}")
            return
        out.error = None
        try:
            _session(engine, msgs, data, skip, AttemptTLS(), out, sock, enforce)
        except DeliveryError as exc:
            out.error = exc


def _reuse(
    engine: Engine,
    key: tuple[Any, ...],
    idle: _Idle,
    msgs: list[QueueMsg],
    data: bytes,
    plan: _HostPlan,
    out: _Outcome,
) -> bool:
    """The next transaction on a kept session (RSET first, RFC 5321 4.1.1.5, pipelined with
    MAIL when the server allows). False when the session turns out to be gone before any
    transaction: then a new one is made."""
    client = idle.client
    out.ip, out.tls = idle.ip, idle.tls
    out.dialed.setdefault(plan.host, []).append(idle.ip)
    try:
        if msgs[0].require_tls is True and "REQUIRETLS" not in client.extensions:
            raise DeliveryError(f"{plan.host} does not announce REQUIRETLS", code=554, enhanced="5.7.30")
        out.session_tls, out.session_requiretls = client.tls, "REQUIRETLS" in client.extensions
        _transactions(client, msgs, data, out, reset=True)
    except SessionGone as exc:
        _log.debug("kept session unusable, connecting again", host=plan.host, err=str(exc))
        client.close()
        out.dialed[plan.host].pop()
        out.ip = out.tls = ""
        out.session_tls, out.session_requiretls = None, False
        return False
    except SMTPError as exc:
        client.close()
        out.error = DeliveryError(
            f"smtp with {plan.host}: {exc}",
            permanent=exc.permanent,
            code=exc.code,
            enhanced=exc.enhanced,
            remote_reply=_remote(exc.reply),
            stalled=exc.timeout or exc.limit,
        )
        return True
    except DeliveryError as exc:
        client.close()
        out.error = exc
        return True
    except stop.Interrupted:
        _log.info("stop requested: ending the session", host=plan.host, signal=stop.signal_name())
        client.abort()
        raise
    engine.keep(key, client, idle.ip, idle.tls)
    return True


def _session(
    engine: Engine,
    msgs: list[QueueMsg],
    data: bytes,
    plan: _HostPlan,
    tls: AttemptTLS,
    out: _Outcome,
    sock: socket.socket,
    enforce: bool,
    key: tuple[Any, ...] | None = None,
) -> None:
    """One SMTP session: greeting, EHLO, STARTTLS per mode with verification, transactions."""
    msg = msgs[0]
    tls_required_no = msg.require_tls is False
    host_result = plan.result if plan.result.policy.type else None
    client = Client(sock, engine.config.hostname, engine.config.delivery)
    local_ip, remote_ip = _ip_of(sock.getsockname), _ip_of(sock.getpeername)
    out.tls = ""
    try:
        greeting = client.read_greeting()
        helo = greeting.text
        client.ehlo()

        def fields(result_type: str, reason: str = "") -> Any:
            return detail(result_type, reason, mx_host=plan.host, helo=helo, local_ip=local_ip, remote_ip=remote_ip)

        announced = "STARTTLS" in client.extensions
        if plan.mode == MODE_OPPORTUNISTIC and not announced:
            tls.both(host_result, 0, 0, fields(RESULT_STARTTLS_NOT_SUPPORTED))
        if plan.mode == MODE_NO_DOWNGRADE and not announced:
            # A session that cannot have TLS: a failure in the TLS results (behaviour notes §3.8
            # counts a refused STARTTLS the same way), and no MAIL FROM.
            tls.both(host_result, 0, 1, fields(RESULT_STARTTLS_NOT_SUPPORTED))
            client.quit()
            raise _no_downgrade_error(plan, f"{plan.host} does not announce STARTTLS")
        if (announced and plan.mode in (MODE_OPPORTUNISTIC, MODE_NO_DOWNGRADE)) or plan.mode == MODE_REQUIRED:
            verified = {"how": "unverified"}

            def wrap(raw: socket.socket) -> socket.socket:
                try:
                    # docs/behaviour-notes.md §3.5: 1 min by default, one deadline for the whole handshake.
                    limit = client.time_left(engine.config.delivery.tls_handshake_timeout)
                    tsock, info = tlsconn.handshake(raw, plan.sni, limit)
                except tlsconn.TLSHandshakeError as exc:
                    tls.both(host_result, 0, 1, fields(exc.result_type, exc.reason))
                    timeout = exc.reason == "io-timeout-during-handshake"
                    raise DeliveryError(str(exc), tls=True, stalled=timeout) from None
                fatal = ""
                if plan.dane_records:
                    v = dane_verify.verify(info.chain, plan.dane_records, plan.dane_names)
                    if v.verified:
                        verified["how"] = "dane"
                    else:
                        if host_result is not None:
                            host_result.add(0, 0, fields(v.result_type or RESULT_VALIDATION_FAILURE, v.reason))
                        if not tls_required_no:
                            fatal = f"dane verification of {plan.host} failed: {v.reason}"
                # docs/behaviour-notes.md §3.6: PKIX for the SNI name (the MX host, or the TLSA base domain with DANE)
                pk = tlsconn.pkix_verify(info.chain, plan.sni, engine.config.tls.ca_files)
                if pk.ok:
                    if verified["how"] != "dane":
                        verified["how"] = "pkix"
                else:
                    tls.recipient.add(0, 0, fields(pk.result_type, pk.reason))
                    if enforce and not tls_required_no and not fatal:
                        fatal = f"pkix verification of {plan.host} failed: {pk.result_type} {pk.message}".strip()
                if fatal:
                    tls.both(host_result, 0, 1)
                    with contextlib.suppress(OSError):
                        tsock.close()
                    raise DeliveryError(fatal, tls=True)
                tls.both(host_result, 1, 0)
                return tsock

            try:
                client.starttls(wrap)
            except SMTPError as exc:
                if exc.reply is not None:
                    tls.both(
                        host_result,
                        0,
                        1,
                        fields(RESULT_STARTTLS_NOT_SUPPORTED, f"smtp-starttls-reply-code-{exc.reply.code}"),
                    )
                raise DeliveryError(
                    f"starttls with {plan.host}: {exc}",
                    permanent=exc.permanent,
                    code=exc.code,
                    enhanced=exc.enhanced,
                    tls=True,
                    remote_reply=_remote(exc.reply),
                ) from None
            out.tls = verified["how"]
            try:
                client.ehlo()
            except SMTPError as exc:
                cause = exc.__cause__
                if exc.tls and cause is not None:
                    # A TLS error right after the handshake is a TLS failure (plaintext fallback
                    # rules apply); an alert from the server also corrects the counts (docs/behaviour-notes.md §3.5).
                    rt, reason = tlsconn.classify_handshake_error(cause)
                    if reason.startswith("tls-remote-alert"):
                        tls.both(host_result, -1, 1, fields(rt, reason))
                    raise DeliveryError(f"after tls handshake with {plan.host}: {exc}", tls=True) from None
                raise
        if msg.require_tls is True and "REQUIRETLS" not in client.extensions:
            raise DeliveryError(f"{plan.host} does not announce REQUIRETLS", code=554, enhanced="5.7.30")
        out.session_tls, out.session_requiretls = client.tls, "REQUIRETLS" in client.extensions
        _transactions(client, msgs, data, out)
        if key is None:
            client.quit()
        else:
            engine.keep(key, client, out.ip, out.tls)
    except SMTPError as exc:
        client.close()
        raise DeliveryError(
            f"smtp with {plan.host}: {exc}",
            permanent=exc.permanent,
            code=exc.code,
            enhanced=exc.enhanced,
            remote_reply=_remote(exc.reply),
            stalled=exc.timeout or exc.limit,
        ) from None
    except DeliveryError:
        client.close()
        raise
    except stop.Interrupted:
        _log.info("stop requested: ending the session", host=plan.host, signal=stop.signal_name())
        client.abort()
        raise


def _remote(reply: Reply | None) -> str:
    """The reply as the server sent it, "" for none or one moxcli made up (``Reply.local``)."""
    return "" if reply is None or reply.local else str(reply)


def _ip_of(get: Callable[[], Any]) -> str:
    """The IP of a socket address ("" for non-IP sockets or when unknown)."""
    try:
        addr = get()
    except OSError:
        return ""
    return addr[0] if isinstance(addr, tuple) else ""


def _transactions(client: Client, msgs: list[QueueMsg], data: bytes, out: _Outcome, reset: bool = False) -> None:
    """Send the message to all recipients: in chunks of the server's LIMITS RCPTMAX (RFC 9422),
    and again for recipients refused with 452/552 (too many recipients) behind an accepted one
    (docs/behaviour-notes.md §3.7). Each recipient's reply lands in ``out.rcpt``."""
    msg = msgs[0]
    pending = [m.recipient for m in msgs]
    while pending:
        limit = client.extensions.rcpt_max or len(pending)
        batch, pending = pending[:limit], pending[limit:]
        results = client.transaction(
            dq.wire_address(msg.mail_from),
            [dq.wire_address(r) for r in batch],
            data,
            requiretls=msg.require_tls is True,
            reset=reset,
        )
        reset = False
        again = []
        for i, (rcpt, res) in enumerate(zip(batch, results, strict=True)):
            if (
                i > 0
                and not res.ok
                and res.reply is not None
                and res.reply.code in (452, 552)
                and any(x.ok for x in results)
            ):
                again.append(rcpt)
            else:
                out.rcpt[rcpt] = res
        pending = again + pending


# ------------------------------------------------------------------------- MTA-STS adapter


def _mtasts(engine: Engine, domain: Domain, tls_required_no: bool) -> tuple[MTASTSPolicy | None, Result, str | None]:
    """The §4.5 policy-cache Get: (policy or None, recipient-domain result, temporary error).

    Fetched for the original recipient domain, never a CNAME target (RFC 8461 §3.4). A
    temporary error aborts the attempt unless the message has TLS-Required: No (docs/behaviour-notes.md §3.3).
    """
    from moxcli.mtasts import cache as mtasts_cache
    from moxcli.mtasts.fetch import FetchOptions

    hit = engine.sts.get(domain.name)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1], hit[2].copy(), None
    try:
        got = mtasts_cache.policy_for_delivery(
            engine.store, engine.resolver, domain, FetchOptions.from_config(engine.config)
        )
    except mtasts_cache.STSTemporaryError as exc:
        if tls_required_no:
            return None, exc.result, None
        return None, exc.result, str(exc)
    if got.cached or got.row is None:
        # Not after a fetch made now: its failure would be a back-off row for the next message.
        engine.sts[domain.name] = (time.monotonic() + CachingResolver.max_ttl, got.policy, got.result.copy())
    return got.policy, got.result, None


# ------------------------------------------------------------------------- the queue run


def _select(tx: Txn, ids: Iterable[int] | None, domain: str | None, now: float) -> Iterator[tuple[int, int, str]]:
    """(id, base_id, recipient domain) of the messages to attempt, in queue order."""
    if ids is not None:
        for i in ids:
            m = qstore.get(tx, i)
            if m is None:
                raise UsageError(f"queue message {i}: no such message", code="not-found")
            if not m.hold:
                yield m.id, m.base_id, m.recipient_domain
        return
    want = None
    if domain is not None:
        want = parse_domain(domain).name if not domain.startswith("[") else domain
    for m in qstore.scan(tx):
        if dq.is_due(m, now) and (want is None or m.recipient_domain == want):
            yield m.id, m.base_id, m.recipient_domain


def _batches(todo: Iterable[tuple[int, int, str]]) -> list[list[int]]:
    """Group the selected ids of one submission and recipient domain, in queue order."""
    groups: dict[tuple[int, str], list[int]] = {}
    for msg_id, base_id, rcpt_domain in todo:
        groups.setdefault((base_id, rcpt_domain), []).append(msg_id)
    return list(groups.values())


def run_queue(
    store: Store,
    data_dir: Path,
    config: Config,
    ids: list[int] | None = None,
    domain: str | None = None,
    now: float | None = None,
    on_attempt: Callable[[AttemptResult], None] | None = None,
    engine: Engine | None = None,
    keep_results: bool = True,
    on_start: Callable[[int], None] | None = None,
) -> list[AttemptResult]:
    """Attempt due messages (or those named by id, due or not; held ones are skipped).

    ``on_attempt`` sees each result as soon as it is recorded (for streaming output);
    ``on_start`` gets the number of messages selected once the run holds the lock and has
    selected them (from then on an error ends a run that took place: the CLI prints its
    summary line before the error); with ``keep_results`` false the results are not collected
    (memory stays flat on a big queue) and the list returned is empty.

    Only ids are held for the run; each attempt reads its records and message file, and a
    session is kept open for the next message to the same MX host (``Engine.keep``). The
    records are written in few synced commits (:class:`_Book`, crash safety in the module
    docstring).

    Under :func:`moxcli.stop.handling`, a stop signal ends the session in progress politely,
    records its messages as interrupted (not counted as an attempt, no TLS results), starts no
    further attempt and raises :class:`moxcli.stop.Interrupted` once all is recorded.
    """
    with stop.shielded(), job_lock(data_dir, "queue"):
        eng = engine or Engine(config, CachingResolver.from_config(config.dns), store, Path(data_dir))
        eng.starttls_seen.clear()  # read afresh by each run (an engine may serve several)
        dq.unlink_leftovers(store, Path(data_dir))
        with store.read() as tx:
            batches = _batches(_select(tx, ids, domain, time.time() if now is None else now))
        total = sum(len(b) for b in batches)
        if on_start is not None:
            on_start(total)
        results = []
        counts = {"done": 0, "interrupted": 0}

        def recorded(r: AttemptResult) -> None:
            counts["done"] += 1
            counts["interrupted"] += r.outcome == "interrupted"
            if keep_results:
                results.append(r)
            if on_attempt is not None:
                on_attempt(r)

        book = _Book(eng, batches, now, recorded)
        try:
            try:
                for i in range(len(batches)):
                    if stop.requested():
                        break
                    msgs = book.begin(i)
                    if msgs:
                        book.attempted(attempt(eng, msgs))
            except BaseException:
                # Record what is known (fewer duplicates after the failure) without hiding it.
                with contextlib.suppress(Exception):
                    book.close()
                raise
            book.close()
        finally:
            eng.close_idle()
        if stop.requested():
            raise stop.Interrupted(
                stop.signal_name(),
                f"{counts['interrupted']} message(s) recorded as interrupted, "
                f"{total - counts['done']} not attempted; run the queue again",
            )
        return results


FLUSH_INTERVAL = 0.5  # seconds: attempt outcomes wait at most about this long for their commit
MAX_CHUNK = 64  # batches begun in one commit (and so outcomes at most one commit records)


@dataclass
class _Attempted:
    """An attempt done on the network whose outcome is not committed yet."""

    msgs: list[QueueMsg]
    out: _Outcome
    tls: AttemptTLS
    duration: float
    at: float = field(default_factory=time.monotonic)


class _Book:
    """The queue records of one run, written in few synced commits.

    Crash safety needs two things of every attempt: that it is recorded as begun (attempt
    count up, next attempt scheduled) before its session, and that its outcome is recorded
    after it. Both are grouped: one commit begins a *chunk* of the next batches, and records the
    outcomes of the attempts since the previous commit; outcomes are also committed when the
    oldest has waited ``FLUSH_INTERVAL``. The chunk grows with the rate of attempts (to about
    ``FLUSH_INTERVAL`` worth, at most ``MAX_CHUNK`` batches) and is one batch when attempts are
    slow, so a fast run makes about one commit per ``MAX_CHUNK`` messages and a slow one about
    two per message, as before. What a kill costs is in docs/delivery.md ("Crash safety").
    """

    def __init__(
        self, engine: Engine, batches: list[list[int]], now: float | None, recorded: Callable[[AttemptResult], None]
    ) -> None:
        self.engine = engine
        self.batches = batches
        self.now = now
        self.recorded = recorded
        self.begun: dict[int, QueueMsg] = {}  # begun, not yet attempted
        self.before: dict[int, tuple[int, float, float | None]] = {}  # attempts, next, last before begin
        self.next_batch = 0  # batches[:next_batch] have been begun
        self.pending: list[_Attempted] = []
        self.unlinker = _Unlinker(engine.data_dir)
        self.chunk = 1
        self.chunk_started = 0.0

    def begin(self, i: int) -> list[QueueMsg]:
        """The begun records of batch ``i`` (those still queued), committing when it is not begun yet."""
        if i >= self.next_batch:
            self._grow_chunk(i)
            end = min(i + self.chunk, len(self.batches))
            self._commit(self.batches[i:end])
            self.next_batch = end
        return [m for m in (self.begun.pop(msg_id, None) for msg_id in self.batches[i]) if m is not None]

    def attempted(self, a: _Attempted) -> None:
        self.pending.append(a)
        if time.monotonic() - self.pending[0].at >= FLUSH_INTERVAL:
            self._commit([])

    def close(self) -> None:
        """Record the outcomes still pending, undo the begin of batches never attempted, and
        forget the files unlinked (one more commit)."""
        self._commit([])
        undo, unlinked = list(self.begun), self.unlinker.close()
        if undo or unlinked:

            def fn(tx: Txn) -> None:
                self._unbegin(tx, undo)
                dq.forget_unlinked(tx, unlinked)

            self.engine.store.update(fn)
            self.begun.clear()
            for msg_id in undo:
                self.before.pop(msg_id, None)

    def _grow_chunk(self, i: int) -> None:
        if i > 0 and self.chunk_started:
            took = time.monotonic() - self.chunk_started
            rate = self.chunk / took if took > 0 else float(MAX_CHUNK)
            self.chunk = max(1, min(MAX_CHUNK, int(rate * FLUSH_INTERVAL)))
        self.chunk_started = time.monotonic()

    def _commit(self, begin: list[list[int]]) -> None:
        if not begin and not self.pending:
            return
        pending, self.pending = self.pending, []
        start = time.time() if self.now is None else self.now
        engine = self.engine

        unlinked = self.unlinker.take_done()

        def fn(tx: Txn) -> tuple[list[tuple[AttemptResult, DeliveryError | None]], list[int], dict[int, QueueMsg]]:
            if unlinked:
                dq.forget_unlinked(tx, unlinked)
            done: list[tuple[AttemptResult, DeliveryError | None]] = []
            removed: list[int] = []
            tls_rows: _TLSRows = {}
            for a in pending:
                done.extend(_record(tx, engine, a, self.before, removed, tls_rows))
            for (day, rcpt_domain), by_policy in tls_rows.items():
                tlsstore.add_results(tx, day, rcpt_domain, by_policy.values())
            begun = {}
            for batch in begin:
                for msg_id in batch:
                    m = qstore.get(tx, msg_id)
                    if m is None:
                        continue
                    self.before[m.id] = (m.attempts, m.next_attempt, m.last_attempt)
                    m.attempts += 1
                    m.last_attempt = start
                    m.next_attempt = start + dq.backoff(m.attempts)
                    m.in_progress = start
                    qstore.put(tx, m)
                    begun[m.id] = m
            return done, removed, begun

        done, removed, begun = engine.store.update(fn)
        self.begun.update(begun)
        self.unlinker.submit(removed)
        for a in pending:
            for m in a.msgs:
                self.before.pop(m.id, None)
        for result, _ in done:
            _log.info(
                "delivery attempt",
                id=result.id,
                rcpt=result.recipient,
                outcome=result.outcome,
                host=result.host,
                err=result.error,
            )
            self.recorded(result)

    def _unbegin(self, tx: Txn, ids: list[int]) -> None:
        for msg_id in ids:
            m = qstore.get(tx, msg_id)
            if m is None or msg_id not in self.before:
                continue
            m.attempts, m.next_attempt, m.last_attempt = self.before[msg_id]
            m.in_progress = None
            qstore.put(tx, m)


class _Unlinker:
    """Unlinks the files of removed queue records in a thread. On a busy disk an unlink waits
    milliseconds for the file system's journal, as long as a whole SMTP transaction on
    loopback; the run need not wait for it. The ids stay noted in the store until
    :meth:`take_done` hands them to a commit that forgets them (``dq.forget_unlinked``)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._todo: SimpleQueue[list[int] | None] = SimpleQueue()
        self._done: list[int] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, msg_ids: list[int]) -> None:
        if not msg_ids:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="moxcli-queue-unlink", daemon=True)
            self._thread.start()
        self._todo.put(msg_ids)

    def take_done(self) -> list[int]:
        """The ids whose files are gone since the last call."""
        with self._lock:
            done, self._done = self._done, []
        return done

    def close(self) -> list[int]:
        """Wait for the unlinks still queued; the ids not yet taken."""
        if self._thread is not None:
            self._todo.put(None)
            self._thread.join()
            self._thread = None
        return self.take_done()

    def _work(self) -> None:
        while (msg_ids := self._todo.get()) is not None:
            gone = []
            for msg_id in msg_ids:
                try:
                    unlink_files(self.data_dir, [queue_file(self.data_dir, msg_id)])
                except OSError as exc:
                    # Stays noted: the next queue run tries again (dq.unlink_leftovers).
                    _log.warn("cannot delete a delivered message's queue file", id=msg_id, err=str(exc))
                    continue
                gone.append(msg_id)
            with self._lock:
                self._done.extend(gone)


def attempt(engine: Engine, msgs: list[QueueMsg]) -> _Attempted:
    """The network part of one attempt for begun messages of one submission and recipient
    domain; its outcome is recorded by :class:`_Book`."""
    t0 = time.monotonic()
    tls = AttemptTLS()
    try:
        data = dq.message_bytes(engine.data_dir, msgs[0])
    except OSError as exc:
        out = _Outcome(error=DeliveryError(f"reading queued message file: {exc.strerror or exc}"))
    else:
        try:
            # The network part may be cut short by a stop signal; the commits around it may not.
            with stop.unshielded():
                out = deliver_message(engine, msgs, data, tls)
        except stop.Interrupted as exc:
            out = exc.partial if isinstance(exc.partial, _Outcome) else _Outcome()
            out.interrupted = exc.signame
        except DNSError as exc:
            out = _Outcome(error=DeliveryError(str(exc)))
        except OSError as exc:
            out = _Outcome(error=DeliveryError(f"delivery: {exc.strerror or exc}"))
        except Exception as exc:
            _log.error(
                "unexpected error during delivery attempt",
                ids=",".join(str(m.id) for m in msgs),
                err=f"{type(exc).__name__}: {exc}",
            )
            out = _Outcome(error=DeliveryError(f"internal error: {type(exc).__name__}: {exc}"))
    out.ended = time.time()
    _note_starttls(engine, msgs[0].recipient_domain, out)
    return _Attempted(msgs, out, tls, time.monotonic() - t0)


def _result_for(msg: QueueMsg, out: _Outcome, duration: float) -> tuple[AttemptResult, DeliveryError | None]:
    """The outcome of one message of a batch: its recipient's reply, else the batch's error."""
    r = AttemptResult(
        id=msg.id,
        recipient=msg.recipient,
        outcome="delivered",
        attempt=msg.attempts,
        host=out.host,
        ip=out.ip,
        tls=out.tls,
        duration=duration,
    )
    rr = out.rcpt.get(msg.recipient)
    err: DeliveryError | None
    if rr is None and out.interrupted:
        r.outcome = "interrupted"
        r.error = f"interrupted by {out.interrupted}"
        return r, None
    if rr is not None:
        r.code, r.enhanced = (rr.reply.code, rr.reply.enhanced) if rr.reply else (0, "")
        if rr.ok:
            return r, None
        err = DeliveryError(
            f"recipient {msg.recipient}: {rr.error or 'rejected'}",
            permanent=rr.permanent,
            code=r.code,
            enhanced=r.enhanced,
            remote_reply=_remote(rr.reply),
        )
    else:
        err = out.error or DeliveryError("not delivered")
        r.code, r.enhanced = err.code, err.enhanced
    permanent = err.permanent
    if permanent and msg.attempts == 1 and out.dualstack and err.enhanced[2:4] == "7.":
        # mox: a policy rejection on the first attempt to a dual-stack host may be about the
        # address family; retry later so the other family gets its turn first.
        permanent = False
    r.error = str(err)
    r.remote_reply = err.remote_reply
    r.outcome = "failed" if permanent or msg.attempts >= dq.max_attempts_of(msg) else "deferred"
    r.stalled = err.stalled
    return r, DeliveryError(
        str(err), permanent=permanent, code=err.code, enhanced=err.enhanced, remote_reply=err.remote_reply
    )


def _remember_domain(tx: Txn, domain: str, out: _Outcome) -> None:
    """Spec §3.7: the domain's last known STARTTLS/REQUIRETLS support. A delivery in plaintext to
    a domain that did STARTTLS before (only a ``TLS-Required: No`` message gets one) is logged
    and kept as ``downgraded``."""
    before = domaintls.get(tx, domain)
    rec = domaintls.record(tx, domain, bool(out.session_tls), out.session_requiretls, out.host, out.ended)
    if not rec.starttls and before is not None and before.starttls_seen is not None:
        _log.warn(
            "delivered in plaintext (TLS-Required: No) to a domain that did STARTTLS before",
            domain=domain,
            host=out.host,
            starttls_seen=datetime.fromtimestamp(before.starttls_seen, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )


def _delay_warning_due(cfg: Config, msg: QueueMsg) -> bool:
    """Whether this failed attempt of ``msg`` brings the sender a "delayed" DSN (RFC 3464
    §2.3.3), once per message and never for reports: by default as mox, after the 5th failed
    attempt; with ``[queue] delay_warning`` at the first failed attempt that long after the
    message was queued (0: never)."""
    if msg.is_tls_report or msg.is_dmarc_report or msg.delayed_dsn is not None:
        return False
    wait = cfg.queue.delay_warning
    if wait is None:
        return msg.attempts == DELAYED_DSN_AFTER
    return wait > 0 and (msg.last_attempt or 0.0) - msg.created >= wait


# (day, recipient domain) -> policy domain -> row: the TLS results of the attempts one commit
# records, merged first, so that each stored row is read and written once per commit.
_TLSRows = dict[tuple[str, str], dict[str, dict[str, Any]]]


def _gather_tls_rows(tls_rows: _TLSRows, day: str, rcpt_domain: str, new: list[dict[str, Any]]) -> None:
    """Add one attempt's rows (``tlsresults.rows``); merging rows first and the stored row
    then gives what adding them one by one gives (``resultsdb.add_results``: results merged,
    ``is_host`` the last, ``send_report`` or-ed)."""
    by_policy = tls_rows.setdefault((day, rcpt_domain), {})
    for row in new:
        have = by_policy.get(row["policy_domain"])
        if have is None:
            by_policy[row["policy_domain"]] = {**row, "results": [r.copy() for r in row["results"]]}
        else:
            merge(have["results"], *row["results"])
            have["is_host"] = row["is_host"]
            have["send_report"] = have["send_report"] or row["send_report"]


def _record(
    tx: Txn,
    engine: Engine,
    a: _Attempted,
    before: dict[int, tuple[int, float, float | None]],
    removed: list[int],
    tls_rows: _TLSRows,
) -> list[tuple[AttemptResult, DeliveryError | None]]:
    """Record one attempt's outcome in ``tx``: remove delivered and failed messages (their ids
    go to ``removed``, the files are unlinked after the commit), store deferrals, DSNs and TLS results."""
    cfg = engine.config
    msgs, out, tls = a.msgs, a.out, a.tls
    first = msgs[0]
    results = [_result_for(m, out, a.duration) for m in msgs]
    original: list[bytes] = []

    def data() -> bytes:
        """The message for a DSN, read again only when one is made (never kept for the run)."""
        if not original:
            try:
                original.append(dq.message_bytes(engine.data_dir, first))
            except OSError:
                original.append(b"")
        return original[0]

    # An interrupted attempt records no TLS results: it says nothing about the server.
    if not cfg.no_outgoing_tls_reports and not first.recipient_domain.startswith("[") and not out.interrupted:
        r = rows(tls, first.recipient_domain, first.is_tls_report, first.is_dmarc_report)
        if r:
            _gather_tls_rows(tls_rows, tlsstore.day_utc(), first.recipient_domain, r)
    if out.session_tls is not None and out.rcpt and not first.recipient_domain.startswith("["):
        _remember_domain(tx, first.recipient_domain, out)
    for msg, (result, err) in zip(msgs, results, strict=True):
        current = qstore.get(tx, msg.id)
        if current is None:
            continue  # dropped meanwhile
        if result.outcome == "interrupted":
            # Not an attempt: the retry schedule is where it was, the message due again.
            current.attempts, current.next_attempt, current.last_attempt = before[msg.id]
            result.attempt = current.attempts
            current.in_progress = None
            current.last_error = result.error
            current.dialed_ips = out.dialed
            qstore.put(tx, current)
            result.next_attempt = current.next_attempt
            continue
        if result.outcome != "deferred":
            if result.outcome == "failed":
                permanent = bool(err and err.permanent)
                result.dsn = dsnmod.failure_dsn_in(
                    tx,
                    engine.data_dir,
                    cfg,
                    current,
                    data(),
                    result.error,
                    out.host,
                    result.code,
                    result.enhanced,
                    permanent,
                    remote_reply=result.remote_reply,
                )
                if permanent and msg.is_tls_report and not msg.recipient_domain.startswith("["):
                    # Beyond mox (mox issue #295): stop sending reports to an address that refuses them.
                    suppress.suppress_after_failure(tx, "tls", msg.recipient, result.error)
            dq.remove_in(tx, engine.data_dir, msg.id)
            removed.append(msg.id)
            continue
        if _delay_warning_due(cfg, current):
            until = current.next_attempt + sum(
                dq.backoff(n) for n in range(current.attempts + 1, dq.max_attempts_of(current))
            )
            result.dsn = dsnmod.failure_dsn_in(
                tx,
                engine.data_dir,
                cfg,
                current,
                data(),
                result.error,
                out.host,
                result.code,
                result.enhanced,
                False,
                delayed_until=until,
                remote_reply=result.remote_reply,
            )
            current.delayed_dsn = current.last_attempt
        current.in_progress = None
        current.last_error = result.error
        current.last_code = result.code
        current.last_enhanced = result.enhanced
        current.dialed_ips = out.dialed
        qstore.put(tx, current)
        result.next_attempt = current.next_attempt
    return results
