"""The fake resolver of the report tests: TXT answers from a table, no network.

One fake for every test that only needs TXT records (DMARC and TLSRPT record lookups, report
sending): it has the interface moxcli.dns.Resolver offers for TXT (``txt(name) -> Answer``,
raising NotFound or TemporaryDNSError), so the code under test cannot tell the difference.
"""

from __future__ import annotations

from collections.abc import Iterable

from moxcli.dns import Answer, NotFound, TemporaryDNSError


class _TXT:
    def __init__(self, text: str) -> None:
        self.strings = [text.encode()]


class TxtResolver:
    """TXT records from ``txt`` ({name: [texts] or text}; names with or without the final dot).

    A value "TEMP", or a name in ``temporary``, fails temporarily (SERVFAIL); other names are
    NXDOMAIN. ``authentic`` is the DNSSEC status of every answer and denial. ``queries`` lists
    the names asked, without the final dot, in order.
    """

    def __init__(self, txt: dict[str, list[str] | str], temporary: Iterable[str] = (), authentic: bool = False) -> None:
        self.records: dict[str, list[str] | str] = {}
        self.add(txt)
        self.temporary = {n.rstrip(".") for n in temporary}
        self.authentic = authentic
        self.queries: list[str] = []

    def add(self, txt: dict[str, list[str] | str]) -> None:
        """More records (replacing those of the same names)."""
        self.records.update({k.rstrip("."): v for k, v in txt.items()})

    def txt(self, name: str) -> Answer:
        name = name.rstrip(".")
        self.queries.append(name)
        v = self.records.get(name)
        if v == "TEMP" or name in self.temporary:
            raise TemporaryDNSError(name, "TXT", "server failure")
        if v is None:
            raise NotFound(name, "TXT", True, self.authentic)
        texts = [v] if isinstance(v, str) else v
        return Answer(name, "TXT", [_TXT(t) for t in texts], self.authentic, name)
