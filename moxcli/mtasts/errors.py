"""MTA-STS errors, one class per outcome mox distinguishes (docs/behaviour-notes.md §4.1, §4.3).

``reason`` is the TLSRPT failure-reason-code of each (docs/behaviour-notes.md §4.5 TLSReportFailureReason).
"""

from __future__ import annotations

from moxcli.dnserrors import DNSError
from moxcli.errors import CheckFailed, TemporaryError


class NoRecord(CheckFailed):
    """No ``_mta-sts`` TXT record (or none that is MTA-STS): the domain has no MTA-STS."""

    reason = "no-mta-sts-dns-txt-record"


class MultipleRecords(CheckFailed):
    reason = "multiple-mta-sts-records"


class RecordSyntax(CheckFailed):
    reason = "record-syntax-error"

    def __init__(self, msg: str, text: str = "") -> None:
        super().__init__(msg)
        self.text = text


class DNSLookupError(TemporaryError):
    """The record lookup failed for another reason than not-found; ``dns_error`` keeps the
    EDE. A DNSSEC failure (bogus) exits 1, an outage 3."""

    reason = "dns-lookup"

    def __init__(self, msg: str, dns_error: DNSError) -> None:
        super().__init__(msg)
        self.dns_error = dns_error
        if dns_error.bogus:
            self.exit_code = CheckFailed.exit_code


class NoPolicy(CheckFailed):
    """404 for the policy URL, or no address for the ``mta-sts`` host."""

    reason = "no-policy-served"


class PolicyFetch(CheckFailed):
    """Any other failure to fetch (TLS, connect, timeout, status other than 200).

    ``tls_result`` is the RFC 8460 result type when certificate verification failed.
    """

    reason = "cannot-fetch-policy"

    def __init__(self, msg: str, tls_result: str = "", tls_reason: str = "") -> None:
        super().__init__(msg)
        self.tls_result = tls_result
        self.tls_reason = tls_reason


class PolicySyntax(CheckFailed):
    """The fetched policy does not parse (or is over 64 KiB); ``text`` is what was fetched."""

    reason = "policy-syntax-error"

    def __init__(self, msg: str, text: str = "") -> None:
        super().__init__(msg)
        self.text = text


def failure_reason(exc: BaseException) -> str:
    """TLSRPT failure-reason-code for an MTA-STS error (docs/behaviour-notes.md §4.5), "" when none applies."""
    dns_error = exc.dns_error if isinstance(exc, DNSLookupError) else exc if isinstance(exc, DNSError) else None
    if dns_error is not None and dns_error.bogus:
        return dns_error.bogus_reason("dns-extended-error")
    if isinstance(exc, (NoRecord, MultipleRecords, RecordSyntax, DNSLookupError, NoPolicy, PolicyFetch, PolicySyntax)):
        return exc.reason
    return ""
