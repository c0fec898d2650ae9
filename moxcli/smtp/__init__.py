"""SMTP client: EHLO, STARTTLS, MAIL/RCPT/DATA with per-recipient replies."""
