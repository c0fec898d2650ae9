"""TLS results of one delivery attempt (docs/behaviour-notes.md §3.8) and which rows get recorded
(docs/behaviour-notes.md §2.2).

A delivery attempt has one recipient-domain result (``sts`` or ``no-policy-found``) and one
result per MX host tried (``tlsa`` or ``no-policy-found``). The engine adds counts and
failure details as the session goes (RFC 8460 §4.3 result types); :func:`rows` turns them
into the rows :func:`moxcli.tlsrpt.resultsdb.add_results` stores.
"""

from __future__ import annotations

from typing import Any

from moxcli.tlsrpt.report import (
    POLICY_NO_POLICY_FOUND,
    POLICY_TLSA,
    FailureDetails,
    Policy,
    Result,
)
from moxcli.values import dataclass, field


def detail(
    result_type: str,
    reason: str = "",
    mx_host: str = "",
    helo: str = "",
    local_ip: str = "",
    remote_ip: str = "",
    count: int = 1,
) -> FailureDetails:
    """A failure detail with mox's field choices (docs/behaviour-notes.md §1.3)."""
    return FailureDetails(
        result_type=result_type,
        sending_mta_ip=local_ip,
        receiving_mx_hostname=mx_host,
        receiving_mx_helo=helo,
        receiving_ip=remote_ip,
        failed_session_count=count,
        additional_information="",
        failure_reason_code=reason,
    )


def empty_result() -> Result:
    """A result with an empty policy type: never recorded (docs/behaviour-notes.md §2.2)."""
    return Result(Policy(""))


@dataclass
class AttemptTLS:
    """The results gathered during one attempt to deliver to one recipient domain."""

    recipient: Result = field(default_factory=empty_result)
    hosts: list[Result] = field(default_factory=list)

    def both(self, host: Result | None, success: int, failure: int, *details: FailureDetails) -> None:
        """Add to the recipient-domain result and the host result (docs/behaviour-notes.md §3.5)."""
        self.recipient.add(success, failure, *details)
        if host is not None:
            host.add(success, failure, *details)

    def failure(self) -> bool:
        """Any failure count (details alone do not count, docs/behaviour-notes.md §2.2)."""
        return self.recipient.failure > 0 or any(h.failure > 0 for h in self.hosts)


def rows(tls: AttemptTLS, recipient_domain: str, is_tls_report: bool, is_dmarc_report: bool) -> list[dict[str, Any]]:
    """Rows for the TLS results table (docs/behaviour-notes.md §2.2).

    ``send_report`` is false for deliveries of TLS reports and, for DMARC report deliveries,
    true only with a failure count (prevents report ping-pong). The recipient-domain
    ``no-policy-found`` result is left out when a ``tlsa`` host result has the same policy
    domain (delivery straight to a host without MX that has DANE).
    """
    send = not is_tls_report and (not is_dmarc_report or tls.failure())
    out: list[dict[str, Any]] = []
    tlsa_domains = {h.policy.domain.lower() for h in tls.hosts if h.policy.type == POLICY_TLSA}
    r = tls.recipient
    if r.policy.type and not (r.policy.type == POLICY_NO_POLICY_FOUND and r.policy.domain.lower() in tlsa_domains):
        out.append({"policy_domain": recipient_domain, "is_host": False, "send_report": send, "results": [r]})
    for h in tls.hosts:
        if h.policy.type:
            out.append({"policy_domain": h.policy.domain, "is_host": True, "send_report": send, "results": [h]})
    return out
