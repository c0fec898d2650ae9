"""Report jobs and their shared parts: TLS reports (``tls``, ``incoming_tls``), message
composition (``message``) and DKIM signing (``dkim``), reused by DMARC reports."""
