"""Delivery engine: the outgoing queue, SMTP delivery under PKIX/DANE/MTA-STS, DSNs, TLS results."""
