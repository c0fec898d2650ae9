"""MTA-STS (RFC 8461): record and policy parsing (``record``, ``policy``, pure), DNS lookup
(``lookup``), HTTPS fetch (``fetch``), the policy cache used by delivery and its refresher
(``cache``), and the ``moxcli fetch mtasts`` check (``check``)."""
