"""`moxcli verify dane` and `moxcli dane record`: DANE checks of SMTP hosts, TLSA records."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import click

from moxcli.cli import output
from moxcli.context import AppContext
from moxcli.errors import EXIT_FAILED, EXIT_TEMPORARY, CheckFailed, UsageError


@click.group("verify")
def verify_group() -> None:
    """Verify DANE for SMTP hosts."""


def _split_host_port(text: str, default_port: int) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    if port.isdigit() and 0 < int(port) < 65536:
        return host, int(port)
    try:
        return host, socket.getservbyname(port, "tcp")
    except OSError:
        raise UsageError(f"bad port {port!r} in {text!r}") from None


def _domain(text: str) -> str:
    from moxcli.domain import DomainError, parse_domain

    try:
        return parse_domain(text).ascii
    except DomainError as exc:
        raise UsageError(f'parsing domain "{text}": {exc}', code="bad-domain") from None


def _usages(text: str | None) -> list[int] | None:
    from moxcli.dane.tlsa import TLSAError, parse_usage

    if not text:
        return None
    out = []
    for part in text.split(","):
        try:
            n, warning = parse_usage(part)
        except TLSAError:
            raise UsageError(f'unknown dane usage "{part}"') from None
        if warning:
            raise UsageError(f'unknown dane usage "{part}"')
        out.append(n)
    return out


@verify_group.command("dane")
@click.argument("host", required=False, metavar="HOST[:PORT]")
@click.option(
    "--mx", "mx_domain", metavar="DOMAIN", help="Check every MX host of DOMAIN as delivery would (mox dane dialmx)."
)
@click.option(
    "--usages", metavar="LIST", help="Only TLSA records of these usages, e.g. dane-ee,dane-ta or 3,2 [default: all]."
)
@click.option(
    "--tls",
    "tls_mode",
    type=click.Choice(["starttls-smtp", "direct"]),
    help="STARTTLS after EHLO, or TLS from the first byte [default: starttls-smtp on 25, 587 and without :PORT; "
    "direct on any other port].",
)
@click.option(
    "--tlsa-port",
    type=click.IntRange(1, 65535),
    help="Port in the TLSA name _PORT._tcp.HOST [default: the :PORT given, else 25].",
)
@click.option(
    "--expiry-warning",
    "expiry_days",
    type=click.IntRange(0, 3650),
    default=21,
    show_default=True,
    metavar="DAYS",
    help="Warn about certificates that expire within DAYS days.",
)
@click.option("--ehlo", "ehlo_name", metavar="NAME", help="EHLO name [default: config hostname].")
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 300),
    default=10.0,
    show_default=True,
    help="Seconds allowed for connecting, for each SMTP reply and for the TLS handshake.",
)
@output.format_options(
    "Output JSON: target, mode, status, verified, error, mx, hosts (host, ips, dnssec, tlsa_base, tlsa, records, "
    "names, status, code, error, result_type, reason, addresses (tls_mode, tls_version, cipher, key_exchange_group, "
    "certificate, dane, pkix, warnings, fix)).",
    rows="one row per address: host, address, port, status, dane, pkix, result type, problem",
)
@click.pass_obj
def verify_dane_cmd(
    app: AppContext,
    host: str | None,
    mx_domain: str | None,
    usages: str | None,
    tls_mode: str | None,
    tlsa_port: int | None,
    expiry_days: int,
    ehlo_name: str | None,
    timeout: float,
    fmt: str,
) -> None:
    """Verify an SMTP host's certificate with DANE (TLSA) and PKIX, at every address.

    Looks up the TLSA records (DNSSEC required, CNAMEs followed as RFC 7672 says), connects
    to every address, does STARTTLS (or direct TLS), and from that one handshake verifies
    DANE (DANE-EE ignores name and expiry; DANE-TA checks the chain to the matched anchor
    and the names) and PKIX (system roots plus config [tls] ca_files). Without :PORT, and
    for MX hosts, the port is config [network] smtp_port (25), with STARTTLS and TLSA at
    _25._tcp (mox dane dialmx). With HOST:PORT the TLSA name is _PORT._tcp.HOST and TLS is
    STARTTLS on 25 and 587, direct on 465 and every other port (mox dane dial HOST:PORT).
    Failures are shown as RFC 8460 result types; where DANE fails, the TLSA records that
    would match the served chain are shown (3 1 1 leaf, 2 1 1 issuer).

    Exit status: 0 every address verified, 1 any failed, 3 temporary failure.

    \b
    Example:
      moxcli verify dane mx.example.org
      moxcli verify dane mx.example.org:465
      moxcli verify dane mx.example.org:2525 --tls starttls-smtp --usages dane-ee
      moxcli verify dane --mx example.org --json
    """
    from moxcli.dane.check import STARTTLS_SMTP, TEMPORARY, VERIFIED, default_tls_mode, verify_host, verify_mx
    from moxcli.dns import Resolver

    if bool(host) == bool(mx_domain):
        raise UsageError("give either HOST[:PORT] or --mx DOMAIN")
    if mx_domain:
        mx_domain = _domain(mx_domain)  # a bad name is the one line said, before any warning
    cfg = app.config()
    resolver = Resolver.from_config(cfg.dns)
    if resolver.untrusted_reason:
        output.warn(resolver.untrusted_reason)
    ehlo = ehlo_name or cfg.hostname
    if mx_domain:
        if tls_mode == "direct" or tlsa_port not in (None, 25):
            raise UsageError("--mx checks SMTP with STARTTLS and TLSA at _25._tcp; give HOST:PORT for other services")
        report = verify_mx(
            resolver,
            _domain(mx_domain),
            cfg.network.smtp_port,
            cfg.tls.ca_files,
            ehlo,
            timeout,
            expiry_days=expiry_days,
        )
    else:
        text = host or ""
        if ":" in text:
            name, port = _split_host_port(text, 25)
            mode = tls_mode or default_tls_mode(port)
            tlsa = tlsa_port or port
        else:
            # The SMTP service of HOST: the configured SMTP port (25 unless a lab maps it).
            name, port, mode, tlsa = text, cfg.network.smtp_port, tls_mode or STARTTLS_SMTP, tlsa_port or 25
        report = verify_host(
            resolver,
            _domain(name),
            port,
            tlsa,
            _usages(usages),
            cfg.tls.ca_files,
            ehlo,
            timeout,
            tls_mode=mode,
            expiry_days=expiry_days,
        )
    if fmt == "json":
        output.emit_json(report.to_json())
    elif fmt == "table":
        _render(report)
    else:
        output.table(None, _ADDRESS_COLUMNS, _address_rows(report), fmt)
        if report.error:
            output.info(f"error: {output.safe(report.error)}")
        output.info(f"{report.target}: {report.status}")
    if report.status == TEMPORARY:
        raise SystemExit(EXIT_TEMPORARY)
    if report.status != VERIFIED:
        raise SystemExit(EXIT_FAILED)


def _when(dt: Any) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%SZ") if dt else ""


def _address_pairs(a: Any) -> list[tuple[str, str]]:
    from moxcli.dane.fix import cert_sha256, spki_sha256
    from moxcli.tlsconn import dns_sans

    tls = a.probe.tls
    if a.probe.mode == "starttls":
        pairs = [("STARTTLS", "offered" if a.probe.starttls_offered else "not offered")]
    else:
        pairs = [("TLS", "direct (no STARTTLS)")]
    if tls is not None:
        cert = tls.leaf
        sans = dns_sans(cert)
        pairs += [
            ("TLS version", f"{tls.version} {tls.cipher} group {tls.group or 'unknown'}"),
            ("subject", cert.subject.rfc4514_string()),
            ("SANs", ", ".join(sans[:4]) + (f" (+{len(sans) - 4} more)" if len(sans) > 4 else "")),
            ("issuer", cert.issuer.rfc4514_string()),
            ("expires", _when(cert.not_valid_after_utc)),
            ("SPKI SHA-256", spki_sha256(cert)),
            ("cert SHA-256", cert_sha256(cert)),
        ]
        pairs += [("warning", w) for w in a.warnings]
    elif a.probe.error:
        pairs.append(("error", a.probe.error))
    if a.pkix is not None:
        pairs.append(
            ("PKIX", "ok" if a.pkix.ok else f"{a.pkix.result_type} {a.pkix.reason}".strip() + f" ({a.pkix.message})")
        )
    if a.dane is not None:
        if a.dane.verified:
            pairs.append(("DANE", f"verified with {a.dane.record.descriptive()} at depth {a.dane.depth}"))
        else:
            pairs.append(("DANE", f"{a.dane.result_type} {a.dane.reason}"))
            pairs += [("DANE error", e) for e in a.dane.errors]
    if a.result_type and a.dane is None:
        pairs.append(("result type", f"{a.result_type} {a.reason}".strip()))
    if a.fix is not None:
        published = ", ".join(a.fix["published"]) or "none"
        pairs.append(("published TLSA", f"{a.fix['tlsa_name']}: {published}"))
        pairs += [("fix: publish", line) for line in a.fix["publish"]]
    pairs.append(("status", a.status))
    return pairs


_ADDRESS_COLUMNS = ["host", "address", "port", "status", "dane", "pkix", "result type", "problem"]


def _address_rows(report: Any) -> list[tuple[Any, ...]]:
    """verify dane as one table (tsv/csv): a row per address, a host without addresses one row."""
    rows: list[tuple[Any, ...]] = []
    for h in report.hosts:
        if not h.addresses:
            rows.append((h.host, "", "", h.status, "", "", f"{h.result_type or ''} {h.reason or ''}".strip(), h.error))
        for a in h.addresses:
            dane = ""
            if a.dane is not None:
                dane = "verified" if a.dane.verified else f"{a.dane.result_type} {a.dane.reason}".strip()
            pkix = ""
            if a.pkix is not None:
                pkix = "ok" if a.pkix.ok else f"{a.pkix.result_type} {a.pkix.reason}".strip()
            problem = a.probe.error or h.error or ""
            result = f"{a.result_type or ''} {a.reason or ''}".strip()
            rows.append((h.host, a.address, a.port, a.status, dane, pkix, result, problem))
    return rows


def _render(report: Any) -> None:
    if report.destinations is not None and report.destinations.hosts:
        d = report.destinations
        output.kv(
            f"MX of {report.target}",
            [
                ("dnssec", "secure" if d.orig_authentic and d.expanded_authentic else "insecure"),
                *([("cname-expanded to", d.expanded_next_hop)] if d.expanded_next_hop != report.target else []),
                ("hosts", ", ".join(f"{h} (pref {p})" if p >= 0 else f"{h} (no MX records)" for h, p in d.hosts)),
            ],
        )
    for h in report.hosts:
        pairs = [
            ("addresses", ", ".join(h.ips) + (" (dnssec)" if h.dnssec else " (no dnssec)") if h.ips else "none"),
        ]
        if h.expanded_host and h.expanded_host != h.host:
            pairs.append(("cname-expanded to", h.expanded_host))
        if h.tlsa is not None:
            pairs.append(("tlsa base", h.tlsa.base))
        if h.names and h.records:
            pairs.append(("dane-ta names", ", ".join(h.names)))
        if h.error:
            pairs.append(("problem", h.error))
        if h.result_type:
            pairs.append(("result type", f"{h.result_type} {h.reason}".strip()))
        pairs.append(("status", h.status))
        output.kv(f"Host {h.host}", pairs)
        if h.tlsa is not None and h.tlsa.records:
            usable = set(h.records)
            rows = []
            for r in h.tlsa.records:
                matched = [f"{a.address} depth {a.dane.depth}" for a in h.addresses if a.dane and a.dane.record == r]
                rows.append((r.descriptive(), "yes" if r in usable else "no", ", ".join(matched) or "-"))
            output.table(None, ["TLSA record", "used", "matched"], rows)
        for a in h.addresses:
            output.kv(f"Address {a.address} port {a.port} ({h.host})", _address_pairs(a))
    if report.error:
        output.info(f"error: {output.safe(report.error)}")
    output.info(f"{report.target}: {report.status}")


@click.group("dane")
def dane_group() -> None:
    """DANE helpers: make TLSA records."""


@dane_group.command("record")
@click.argument("usage", required=False)
@click.argument("selector", required=False)
@click.argument("matchtype", required=False)
@click.argument("pemfile", required=False, type=click.Path(dir_okay=False, path_type=Path), metavar="CERT.pem")
@click.option(
    "--from-host",
    "from_host",
    metavar="HOST[:PORT]",
    help="Connect to a live server instead and print the TLSA records that match its chain (ldns-dane create).",
)
@click.option(
    "--tls",
    "tls_mode",
    type=click.Choice(["starttls-smtp", "direct"]),
    help="With --from-host: STARTTLS or direct TLS [default: starttls-smtp on 25, 587 and without :PORT].",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="With --from-host: JSON host, address, port, tlsa_name, records, publish, chain.",
)
@click.pass_obj
def record_cmd(
    app: AppContext,
    usage: str | None,
    selector: str | None,
    matchtype: str | None,
    pemfile: Path | None,
    from_host: str | None,
    tls_mode: str | None,
    as_json: bool,
) -> None:
    """Print a TLSA record for a certificate or key in a PEM file (mox dane makerecord).

    USAGE is pkix-ta, pkix-ee, dane-ta, dane-ee or 0-3; SELECTOR cert or spki (0, 1);
    MATCHTYPE full, sha2-256 or sha2-512 (0, 1, 2). The first usable PEM block is used: a
    CERTIFICATE, or for spki also a public or private key. For SMTP publish
    "dane-ee spki sha2-256" (3 1 1) at _25._tcp.<mx host> (RFC 7672 §3.1).

    With --from-host HOST[:PORT] (no other arguments) it connects to the server and prints,
    as zone lines, the 3 1 1 record of the leaf certificate and the 2 1 1 record of the
    issuer it sends, at _PORT._tcp.HOST (_25._tcp without :PORT; the port connected to is
    then config [network] smtp_port).

    Exit status: 0 ok, 1 nothing usable in the file (or no TLS at the host), 2 bad
    arguments, 3 host not reachable.

    \b
    Example:
      moxcli dane record dane-ee spki sha2-256 /etc/ssl/mx.pem
      moxcli dane record 2 0 1 ca.pem
      moxcli dane record --from-host mx.example.org
      moxcli dane record --from-host mail.example.org:465
    """
    from moxcli.dane.tlsa import TLSAError, make_record, parse_mtype, parse_selector, parse_usage
    from moxcli.inputs import read_regular

    if from_host is not None:
        if usage or selector or matchtype or pemfile:
            raise UsageError("--from-host takes no USAGE SELECTOR MATCHTYPE CERT.pem")
        _record_from_host(app, from_host, tls_mode, as_json)
        return
    if not (usage and selector and matchtype and pemfile):
        raise UsageError("give USAGE SELECTOR MATCHTYPE CERT.pem, or --from-host HOST[:PORT]")
    if not pemfile.exists():  # what else is wrong with it (a FIFO, a directory) read_regular says
        raise UsageError(f"{pemfile}: no such file")

    try:
        u, warning = parse_usage(usage)
        s = parse_selector(selector)
        m = parse_mtype(matchtype)
    except TLSAError as exc:
        raise UsageError(str(exc)) from None
    if warning:
        output.warn(warning)
    try:
        rec, notes = make_record(u, s, m, read_regular(pemfile, 1 << 20, "PEM file"))
    except TLSAError as exc:
        for n in exc.notes:
            output.info(n)
        raise CheckFailed(f"{pemfile}: {exc}") from None
    for n in notes:
        output.info(n)
    click.echo(rec.record())


def _record_from_host(app: AppContext, text: str, tls_mode: str | None, as_json: bool) -> None:
    from moxcli.dane.check import STARTTLS_SMTP, default_tls_mode, records_from_host
    from moxcli.dns import Resolver

    cfg = app.config()
    if ":" in text:
        name, port = _split_host_port(text, 25)
        mode, tlsa_port = tls_mode or default_tls_mode(port), port
    else:
        name, port, mode, tlsa_port = text, cfg.network.smtp_port, tls_mode or STARTTLS_SMTP, 25
    served = records_from_host(
        Resolver.from_config(cfg.dns), _domain(name), port, tlsa_port, mode, cfg.hostname, cfg.dns.timeout * 2
    )
    if as_json:
        output.emit_json(served.to_json())
        return
    for i, c in enumerate(served.chain[:2]):
        output.info(
            f"{'leaf' if i == 0 else 'issuer'}: {output.safe(c['subject'])} (issuer {output.safe(c['issuer'])}, "
            f"not after {output.rfc3339(c['not_after'])}, SPKI SHA-256 {c['spki_sha256']})"
        )
    for line in served.to_json()["publish"]:
        click.echo(line)
