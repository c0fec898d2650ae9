#!/usr/bin/env python3
"""Write a maildir of demo report mail: 30 days of TLS and DMARC reports for three policy
domains, in Google's and Microsoft's shapes (testdata/reports via tests/helpers/reportmail.py),
plus one mail that is not a report. For trying `reports import` and `reports html`:

    scripts/report-demo.py /tmp/demo-mail
    moxcli --data /tmp/demo reports import --maildir /tmp/demo-mail
    moxcli --data /tmp/demo reports html /tmp/demo/reports.html
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers import reportmail as rm  # noqa: E402

DOMAINS = ("example.org", "example.net", "mail.example.com")


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: report-demo.py MAILDIR")
    md = Path(sys.argv[1])
    for sub in ("new", "cur", "tmp"):
        (md / sub).mkdir(parents=True, exist_ok=True)
    n = 0
    for day in range(30):
        for k, domain in enumerate(DOMAINS):
            i = day * len(DOMAINS) + k
            for mail in (
                rm.tls_mail("google", i, domain, day=day),
                rm.tls_mail("microsoft", i, domain, day=day),
                rm.dmarc_mail("google", i, domain, day=day),
                rm.dmarc_mail("microsoft", i, domain, day=day),
            ):
                (md / "new" / f"{rm.BASE + day * rm.DAY}.M{n}P1.demo").write_bytes(mail)
                n += 1
    (md / "new" / f"{rm.BASE}.M{n}P1.demo").write_bytes(rm.plain_mail(1))
    print(f"wrote {n + 1} messages to {md}/new")


if __name__ == "__main__":
    main()
