"""DANE for SMTP (RFC 6698, RFC 7671, RFC 7672): TLSA records, lookup, verification.

``tlsa`` is pure (records, usability, matching, makerecord, allowed names), ``lookup`` does
the DNS gathering with DNSSEC rules, ``verify`` checks a chain, ``check`` runs the
`moxcli verify dane` checks (DNS, connect to every address, one handshake each).
"""
