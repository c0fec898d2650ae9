"""TLSRPT (RFC 8460): DNS records (``record``, ``lookup``) and the report model (``report``)."""
