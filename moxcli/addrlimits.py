"""RFC 5321 4.5.3.1's size limits of an address, for every place that takes one.

Any SMTP server must accept these sizes and may refuse longer ones, so an address moxcli
would later send to (queue, report recipients, suppression entries, configured report
destinations) is refused where it is taken, not when a report is due. Pure: no I/O.
"""

from __future__ import annotations

from moxcli.domain import Domain

# RFC 5321 4.5.3.1.1-3: the sizes every SMTP server must accept, and no more may be sent.
MAX_LOCALPART = 64  # octets
MAX_DOMAIN = 255  # octets
MAX_PATH = 256  # octets of the reverse-path or forward-path, "<" and ">" included


def _octets(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def size_problem(local: str, domain: str) -> str | None:
    """Why ``local@domain`` is over RFC 5321 4.5.3.1's limits, or None.

    ``domain`` as it is sent: A-labels when the localpart is ASCII (RFC 6531 3.2)."""
    if _octets(local) > MAX_LOCALPART:
        return f"local-part longer than {MAX_LOCALPART} octets (RFC 5321 4.5.3.1.1)"
    if _octets(domain) > MAX_DOMAIN:
        return f"domain longer than {MAX_DOMAIN} octets (RFC 5321 4.5.3.1.2)"
    if _octets(local) + 1 + _octets(domain) + 2 > MAX_PATH:
        return f"path longer than {MAX_PATH} octets (RFC 5321 4.5.3.1.3)"
    return None


def domain_size_problem(local: str, domain: Domain) -> str | None:
    """:func:`size_problem` with the domain in the form it is sent (RFC 6531 3.2: A-labels
    unless the localpart needs SMTPUTF8 anyway)."""
    return size_problem(local, domain.ascii if local.isascii() else domain.name)
