"""DMARC aggregate reporting (RFC 7489 §7.2, RFC 9990).

Pure parts: ``record`` (DMARC TXT records and rua URIs), ``interval`` (report periods),
``orgdomain`` (organizational domains), ``evaluation`` (the JSON-lines contract),
``report`` (aggregate XML out) and ``parse`` (reports in). DNS: ``lookup`` and ``verify``.
"""
