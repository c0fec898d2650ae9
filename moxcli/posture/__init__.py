"""A domain's whole TLS posture for `moxcli check domain` (MX + DNSSEC, MTA-STS, DANE, TLSRPT, REQUIRETLS).

``check_domain`` checks one domain; ``check_domains`` many, concurrently and bounded, with
per-host results shared between domains that use the same MX hosts.
"""

from moxcli.posture.check import DomainPosture, Finding, HostPosture, PostureOptions, check_domain, check_domains

__all__ = ["DomainPosture", "Finding", "HostPosture", "PostureOptions", "check_domain", "check_domains"]
