"""Fetching the policy over HTTPS (RFC 8461 §3.3, docs/behaviour-notes.md §4.3); the HTTPS
exchange itself is in moxcli.mtasts.https, imported when a policy is fetched.

``https://mta-sts.<domain>/.well-known/mta-sts.txt`` with PKIX verification (system roots
plus ``[tls] ca_files``), no redirects, no HTTP caching, a 64 KiB cap enforced while reading
and one deadline for the whole exchange. The host's address comes from our resolver and the
port from ``[network] https_port``; SNI, Host and the certificate check use the name.

The deadline is real: a watchdog shuts the socket down when it passes, so a server that
drips one byte at a time (in the TLS handshake, the headers or the body) cannot keep a
fetch alive past it; per-``recv`` socket time-outs alone would not stop that.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from moxcli.dnserrors import DNSError, NotFound
from moxcli.domain import Domain
from moxcli.jsonfmt import Finding
from moxcli.mtasts.errors import NoPolicy, PolicyFetch
from moxcli.mtasts.policy import Policy
from moxcli.values import dataclass, field

if TYPE_CHECKING:
    from moxcli.dns import Resolver  # type only: dnspython loads when a lookup runs

MAX_POLICY_SIZE = 64 * 1024  # RFC 8461 §3.3 suggests 64 KiB
PATH = "/.well-known/mta-sts.txt"


@dataclass(frozen=True)
class FetchOptions:
    """How to reach policy hosts: from config ``[network] https_port`` and ``[tls] ca_files``;
    ``timeout`` is the one deadline of a whole fetch (``[mtasts] fetch_timeout``)."""

    https_port: int = 443
    ca_files: tuple[Path, ...] = ()
    timeout: float = 60.0

    @classmethod
    def from_config(cls, cfg, timeout: float | None = None) -> FetchOptions:
        """From a :class:`moxcli.config.Config`; the deadline is ``[mtasts] fetch_timeout``
        unless ``timeout`` is given."""
        return cls(
            cfg.network.https_port, tuple(cfg.tls.ca_files), cfg.mtasts.fetch_timeout if timeout is None else timeout
        )


@dataclass
class Fetched:
    policy: Policy
    text: str
    url: str
    content_type: str
    warnings: list[Finding] = field(default_factory=list)


def policy_url(domain: Domain) -> str:
    return f"https://mta-sts.{domain.ascii}{PATH}"


def fetch_policy(resolver: Resolver, domain: Domain, options: FetchOptions = FetchOptions()) -> Fetched:
    """GET and parse the policy of ``domain``, all within ``options.timeout`` seconds.

    Raises NoPolicy (no address, 404), PolicyFetch (TLS, network, timeout, other status),
    PolicySyntax (over 64 KiB or unparsable; carries the text).
    """
    deadline = time.monotonic() + options.timeout
    host = f"mta-sts.{domain.ascii}"
    url = policy_url(domain)
    try:
        addresses, _, _ = resolver.ips(host)
    except NotFound:
        raise NoPolicy(f"{url}: no address for {host}") from None
    except DNSError as exc:
        raise PolicyFetch(f"{url}: {exc}") from None
    from moxcli.mtasts import https  # http.client and ssl: only when a policy is fetched

    return https.fetch(host, url, addresses, options, deadline)
