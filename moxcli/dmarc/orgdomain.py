"""Organizational domains (RFC 7489 §3.2) from the public suffix list that publicsuffixlist ships.

RFC 7489 uses the public suffix list; RFC 9989 replaces it with a DNS tree walk. We keep the
RFC 7489 rule (as mox does): it needs no DNS and the bundled list is never downloaded at run time.
Unknown TLDs (such as the lab's `.test`) count as one-label public suffixes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from moxcli.domain import Domain, parse_domain


@lru_cache(maxsize=1)
def _psl() -> Any:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(accept_unknown=True)


def organizational_domain(domain: Domain) -> Domain:
    """The registered domain: public suffix plus one label; the domain itself if it is a suffix."""
    org = _psl().privatesuffix(domain.ascii)
    return domain if org is None or org == domain.ascii else parse_domain(org)


def same_organization(a: Domain, b: Domain) -> bool:
    return organizational_domain(a).ascii == organizational_domain(b).ascii
