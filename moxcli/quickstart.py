"""`moxcli init` (mox's quickstart: data directory, config, DKIM keys, postmaster account) and
the DNS records to publish for configured domains."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from moxcli.config import MAX_KEY_SIZE, Config, DomainConfig, load_config
from moxcli.domain import DomainError, parse_domain
from moxcli.errors import ConfigError, UsageError
from moxcli.inputs import read_regular
from moxcli.store import Store
from moxcli.store.files import ensure_dir, private_dir, write_file
from moxcli.store.mail import ensure_account, ensure_mailbox
from moxcli.values import asdict, dataclass

TLSRPT_LOCALPART = "tlsreports"
DMARC_LOCALPART = "dmarcreports"


@dataclass(frozen=True)
class DNSRecord:
    """A record to publish; a placeholder (value None) is one that cannot be known yet.

    A placeholder's zone line is a `;` comment naming the command that makes the record, so
    the printed zone stays valid for zone parsers (ldns-read-zone, named-checkzone).
    """

    name: str
    type: str
    value: str | None
    comment: str = ""

    @property
    def placeholder(self) -> bool:
        return self.value is None

    def zone_line(self) -> str:
        if self.value is None:
            line = f"; {self.name}. {self.type} (not known yet)"
        else:
            line = f"{self.name}. {self.type} {self.value}"
        return f";; {self.comment}\n{line}" if self.comment else line


@dataclass(frozen=True)
class InitResult:
    data_dir: Path
    config_file: Path
    domain: str
    hostname: str
    dkim_keys: tuple[Path, ...]
    records: tuple[DNSRecord, ...]


def _generate_key(algorithm: str) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    key = ed25519.Ed25519PrivateKey.generate() if algorithm == "ed25519" else rsa.generate_private_key(65537, 2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def init_data_dir(
    data_dir: Path, config_file: Path, domain: str, hostname: str, now: float | None = None
) -> InitResult:
    """Create data dir, config and DKIM keys for one domain, and the postmaster account.

    Refuses to overwrite an existing config; nothing is left behind when it fails midway
    (the config file is written last, after keys and store).
    """
    try:
        dom = parse_domain(domain)
    except DomainError as exc:
        raise UsageError(f"domain {domain!r}: {exc}") from None
    try:
        host = parse_domain(hostname)
    except DomainError as exc:
        raise UsageError(f"hostname {hostname!r}: {exc}") from None
    if config_file.exists():
        raise ConfigError(f"{config_file}: config already exists; not overwriting it")
    private_dir(data_dir)
    year = time.gmtime(now if now is not None else time.time()).tm_year
    selectors = [(f"{year}a", "ed25519"), (f"{year}b", "rsa")]
    key_dir = ensure_dir(data_dir, data_dir / "dkim" / dom.ascii)
    keys = []
    for sel, alg in selectors:
        path = key_dir / f"{sel}.{alg}.pem"
        if path.exists():
            raise ConfigError(f"{path}: DKIM key already exists; not overwriting it")
        write_file(path, _generate_key(alg), root=data_dir)
        keys.append(path)

    def rel(p: Path) -> str:
        try:
            return str(p.relative_to(config_file.parent))
        except ValueError:
            return str(p)

    lines = [
        "# moxcli configuration, written by `moxcli init`. Reference: README.md, section Configuration.",
        f"hostname = {_toml_str(host.ascii)}",
        "",
        "[postmaster]",
        'account = "postmaster"',
        'mailbox = "Postmaster"',
        "",
        "[host_tlsrpt]",
        f'localpart = "{TLSRPT_LOCALPART}"',
        'account = "postmaster"',
        'mailbox = "TLSRPT"',
        "",
        "[dns]",
        '# resolvers = ["127.0.0.1:53"]   # IPv4:port, [IPv6]:port or an address (port 53); empty: /etc/resolv.conf',
        "trust_ad = false",
        "",
        f"[domains.{_toml_str(dom.ascii)}.dkim]",
        f"sign = [{', '.join(_toml_str(s) for s, _ in selectors)}]",
    ]
    for (sel, alg), path in zip(selectors, keys, strict=True):
        lines += [
            "",
            f"[domains.{_toml_str(dom.ascii)}.dkim.selectors.{_toml_str(sel)}]",
            f"algorithm = {_toml_str(alg)}",
            f"private_key_file = {_toml_str(rel(path))}",
        ]
    for kind, localpart, mailbox in (("tlsrpt", TLSRPT_LOCALPART, "TLSRPT"), ("dmarc", DMARC_LOCALPART, "DMARC")):
        lines += [
            "",
            f"[domains.{_toml_str(dom.ascii)}.{kind}]",
            f"localpart = {_toml_str(localpart)}",
            'account = "postmaster"',
            f"mailbox = {_toml_str(mailbox)}",
        ]
    text = "\n".join(lines) + "\n"
    cfg_check = _parse_written(text, config_file)

    with Store.open(data_dir) as store, store.write() as tx:
        ensure_account(tx, "postmaster", f"postmaster@{dom.ascii}")
        for mb in ("Inbox", "Postmaster", "TLSRPT", "DMARC"):
            ensure_mailbox(tx, "postmaster", mb)
    inside = config_file.parent == data_dir or data_dir in config_file.parents
    write_file(config_file, text.encode(), root=data_dir if inside else None)
    return InitResult(data_dir, config_file, dom.name, host.ascii, tuple(keys), tuple(dns_records(cfg_check)))


def _parse_written(text: str, file: Path) -> Config:
    from moxcli.config import parse_config

    return parse_config(text, file)


def _dkim_txt(pem_path: Path, algorithm: str) -> str:
    from cryptography.hazmat.primitives import serialization

    from moxcli.perms import check_private

    check_private(pem_path, "DKIM private key")
    try:
        key = serialization.load_pem_private_key(read_regular(pem_path, MAX_KEY_SIZE, "DKIM key"), password=None)
    except UsageError as exc:
        raise ConfigError(f"cannot read DKIM private key: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{pem_path}: cannot read DKIM private key: {exc}") from None
    pub = key.public_key()
    if algorithm == "ed25519":
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def _txt(value: str) -> str:
    """TXT rdata: split into character-strings of at most 255 bytes (RFC 1035 3.3.14)."""
    chunks = [value[i : i + 255] for i in range(0, len(value), 255)] or [""]
    return " ".join(f'"{c}"' for c in chunks)


def mta_sts_policy(host: str) -> str:
    """The suggested MTA-STS policy file (RFC 8461 §3.2: key/value lines ending in CRLF).

    max_age is one week: RFC 8461 §3.2 recommends weeks, and `fetch mtasts` warns about a day or
    less. (mox suggests one day; producing, we follow the RFC.)
    """
    return f"version: STSv1\r\nmode: enforce\r\nmx: {host}\r\nmax_age: 604800\r\n"


def _policy_id(domain: str, host: str) -> str:
    """A stable id that changes exactly when the suggested policy changes (RFC 8461 3.1)."""
    policy = mta_sts_policy(host).replace("\r\n", "\n")
    return hashlib.sha256((domain + "\n" + policy).encode()).hexdigest()[:20]


def _tlsa_311(cert_file: Path) -> str:
    """`3 1 1 <sha256 of the SPKI>` of the certificate in a PEM file (RFC 7672 §3.1)."""
    from moxcli.dane.tlsa import TLSAError, make_record

    try:
        rec, _notes = make_record(3, 1, 1, read_regular(cert_file, 1 << 20, "PEM file"))
    except TLSAError as exc:
        raise UsageError(f"{cert_file}: {exc}") from None
    return rec.record()


def selected_domains(cfg: Config, names: Sequence[str] = ()) -> list[DomainConfig]:
    """The configured domains named (all without names); UsageError for one not configured."""
    if not cfg.domains:
        raise ConfigError(f"{cfg.path or 'config'}: no domains configured (run `moxcli init DOMAIN --hostname HOST`)")
    if not names:
        return list(cfg.domains.values())
    out = []
    for name in names:
        try:
            parse_domain(name)
        except DomainError as exc:
            raise UsageError(f"invalid domain {name!r}: {exc}", code="bad-domain") from None
        d = cfg.domain(name)
        if d is None:
            raise UsageError(f"domain {name!r} is not configured in {cfg.path}")
        if d not in out:
            out.append(d)
    return out


def dns_records(
    cfg: Config, domain: str | Sequence[str] | None = None, tls_cert: Path | None = None
) -> list[DNSRecord]:
    """Records to publish for the named configured domains (or all), plus the host's own.

    The TLSA record of the MX host needs its certificate (`tls_cert`); without it the record
    is a placeholder.
    """
    names = [domain] if isinstance(domain, str) else list(domain or ())
    domains = selected_domains(cfg, names)
    host = cfg.hostname
    out: list[DNSRecord] = []
    for d in domains:
        name = d.name
        out.append(DNSRecord(name, "MX", f"10 {host}."))
        out.append(DNSRecord(name, "TXT", _txt("v=spf1 mx ~all"), "SPF: only the MX hosts send for this domain"))
        for sel in d.dkim.selectors.values():
            out.append(
                DNSRecord(
                    f"{sel.name}._domainkey.{name}",
                    "TXT",
                    _txt(_dkim_txt(sel.private_key_file, sel.algorithm)),
                    f"DKIM selector {sel.name} ({sel.algorithm})",
                )
            )
        rua = f" rua=mailto:{d.dmarc.address}!10m;" if d.dmarc else ""
        out.append(
            DNSRecord(
                f"_dmarc.{name}",
                "TXT",
                _txt(f"v=DMARC1; p=reject;{rua}".rstrip(";")),
                "DMARC policy; aggregate reports to the configured address",
            )
        )
        if d.tlsrpt:
            out.append(
                DNSRecord(
                    f"_smtp._tls.{name}",
                    "TXT",
                    _txt(f"v=TLSRPTv1; rua=mailto:{d.tlsrpt.address}"),
                    "TLSRPT (RFC 8460): TLS reports about delivery to this domain",
                )
            )
        out.append(
            DNSRecord(
                f"_mta-sts.{name}",
                "TXT",
                _txt(f"v=STSv1; id={_policy_id(name, host)}"),
                "MTA-STS (RFC 8461): publish only once "
                f"https://mta-sts.{name}/.well-known/mta-sts.txt serves a policy with 'mx: {host}'",
            )
        )
    if cfg.host_tlsrpt is not None and host != "localhost":
        out.append(
            DNSRecord(
                f"_smtp._tls.{host}",
                "TXT",
                _txt(f"v=TLSRPTv1; rua=mailto:{cfg.host_tlsrpt.localpart}@{host}"),
                "TLSRPT for the MX host itself: DANE results (RFC 8460 3, RFC 7672)",
            )
        )
        if tls_cert is not None:
            out.append(
                DNSRecord(
                    f"_25._tcp.{host}",
                    "TLSA",
                    _tlsa_311(tls_cert),
                    f"DANE (RFC 7672), only with DNSSEC: the public key of {tls_cert.name}",
                )
            )
        else:
            out.append(
                DNSRecord(
                    f"_25._tcp.{host}",
                    "TLSA",
                    None,
                    "DANE (RFC 7672), only with DNSSEC; make it with "
                    "`moxcli dane record 3 1 1 CERT.pem` or `moxcli dns records --tls-cert CERT.pem`",
                )
            )
    return out


def records_for_data_dir(
    config_file: Path, domain: str | Sequence[str] | None, tls_cert: Path | None = None
) -> list[DNSRecord]:
    return dns_records(load_config(config_file, required=True), domain, tls_cert)


def record_dict(r: DNSRecord) -> dict[str, Any]:
    """The JSON form (docs/json.md): a placeholder has `"value": null, "placeholder": true`."""
    d: dict[str, Any] = asdict(r)
    d["comment"] = r.comment or None
    d["placeholder"] = r.placeholder
    return d
