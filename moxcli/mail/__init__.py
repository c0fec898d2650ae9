"""Accounts' mail: adding messages (deliver), importing mbox files and maildirs (importer).

Pure parts (no I/O): flags.py (flag headers, maildir info, dovecot-keywords), names.py
(mailbox names, modified UTF-7), mbox.py (splitting a byte stream into messages).
"""
