"""The `moxcli` command line: the registry of commands here, the click root group in
moxcli.cli.root (imported on first use of `cli` or `main`, so that the fast paths of
moxcli.entry and click-free helpers such as moxcli.cli.output load without click).
"""

from __future__ import annotations

# name -> (module, attribute, short help). Help texts must equal each command's first
# docstring line (tests/test_cli_frame.py checks it).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": (
        "moxcli.cli.quickstart",
        "init_cmd",
        "Create the data directory, config and DKIM keys; print DNS records.",
    ),
    "dns": ("moxcli.cli.quickstart", "dns_group", "DNS records to publish for the configured domains."),
    "check": ("moxcli.cli.check", "check_group", "Check TLSRPT records and a domain's whole TLS posture."),
    "fetch": ("moxcli.cli.mtasts", "fetch_group", "Fetch and validate MTA-STS policies."),
    "verify": ("moxcli.cli.dane", "verify_group", "Verify DANE for SMTP hosts."),
    "dane": ("moxcli.cli.dane", "dane_group", "DANE helpers: make TLSA records."),
    "mtasts": ("moxcli.cli.mtasts", "mtasts_group", "The MTA-STS policy cache: list and refresh."),
    "queue": ("moxcli.cli.queue", "queue_group", "The outgoing queue: add, list, run deliveries."),
    "tlsresults": ("moxcli.cli.queue", "tlsresults_group", "TLS results recorded by deliveries."),
    "domains": (
        "moxcli.cli.queue",
        "domains_group",
        "What deliveries learned about recipient domains: STARTTLS, REQUIRETLS.",
    ),
    "send-tlsreports": ("moxcli.cli.tlsreports", "send_tlsreports_cmd", "Send the daily TLS reports (RFC 8460)."),
    "tlsreports": ("moxcli.cli.tlsreports", "tlsreports_group", "Incoming TLS reports: import, list, show, summary."),
    "suppress": ("moxcli.cli.suppress", "suppress_group", "Suppression lists for TLS and DMARC report addresses."),
    "dmarc": ("moxcli.cli.dmarc", "dmarc_group", "DMARC evaluations: record them for aggregate reports."),
    "send-dmarcreports": (
        "moxcli.cli.dmarc",
        "send_dmarcreports_cmd",
        "Send the DMARC aggregate reports that are due.",
    ),
    "send-reports": (
        "moxcli.cli.reports",
        "send_reports_cmd",
        "Run whichever report jobs are due (for an hourly cron line).",
    ),
    "dmarcreports": (
        "moxcli.cli.dmarc",
        "dmarcreports_group",
        "Incoming DMARC aggregate reports: import, list, show, summary.",
    ),
    "reports": ("moxcli.cli.reports", "reports_group", "Incoming TLS and DMARC reports together: import, html."),
    "backup": ("moxcli.cli.data", "backup_cmd", "Make a consistent backup of the data directory."),
    "verifydata": ("moxcli.cli.data", "verifydata_cmd", "Check a data directory for problems."),
    "gentestdata": ("moxcli.cli.data", "gentestdata_cmd", "Generate a deterministic data directory for tests."),
    "import": ("moxcli.cli.mail", "import_group", "Import mbox files, maildirs or archives into an account."),
    "account": ("moxcli.cli.mail", "account_group", "Accounts in the store."),
    "mailbox": ("moxcli.cli.mail", "mailbox_group", "Mailboxes of an account."),
    "message": ("moxcli.cli.mail", "message_group", "Messages of a mailbox."),
}

# Names that live in moxcli.cli.root, reachable as moxcli.cli.NAME (PEP 562).
_ROOT_NAMES = ("cli", "main", "LazyGroup", "MAX_ERROR_LINE")


def __getattr__(name: str) -> object:
    if name in _ROOT_NAMES:
        import importlib

        return getattr(importlib.import_module("moxcli.cli.root"), name)
    raise AttributeError(f"module 'moxcli.cli' has no attribute {name!r}")
