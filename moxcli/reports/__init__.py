"""Report jobs and their shared parts: TLS reports (``tls``, ``incoming_tls``), incoming DMARC
reports (``incoming_dmarc``), message composition (``message``) and DKIM signing (``dkim``),
reused by DMARC reports."""
