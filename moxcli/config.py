"""The TOML configuration: read with tomllib, validated into frozen value classes (moxcli.values).

Key names are a contract (scripts write them). Unknown keys and bad values raise
ConfigError naming the key and the file. Relative paths are relative to the config file.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from moxcli.addrlimits import domain_size_problem
from moxcli.domain import DomainError, parse_domain
from moxcli.errors import ConfigError, UsageError
from moxcli.values import dataclass, field, fields

DKIM_ALGORITHMS = ("ed25519", "rsa")
MAX_CONFIG_SIZE = 1 << 20  # a config is a few KB; the cap keeps `--config /dev/zero`-like inputs out
MAX_MTASTS_FETCH_TIMEOUT = 600  # seconds; RFC 8461 sets no limit, mox uses 1 min
MAX_DNS_TIMEOUT = 300  # seconds; one lookup never needs longer (a job's lock would be held meanwhile)
MAX_NAME = 200  # bytes of an account or mailbox name component (account names are directory names)
MAX_KEY_SIZE = 1 << 16  # a PEM private key: 4096-bit RSA is about 3.3 KB
DMARC_REPORT_FORMATS = ("rfc7489", "rfc9990")
DEFAULT_MAX_MESSAGE_SIZE = 100 << 20  # bytes; mox's default MaxMessageSize (import, queue add)
# [store] seal_max_size: moxcli.store.seal.DEFAULT_SEAL_MAX_SIZE (not imported from there:
# reading the config must not load lmdb)
DEFAULT_SEAL_MAX_SIZE = 64 << 20
MAX_SEAL_MAX_SIZE = 1 << 40


@dataclass(frozen=True)
class DKIMSelector:
    name: str
    private_key_file: Path
    algorithm: str = "ed25519"
    hash: str = "sha256"
    canonicalization: str = "relaxed/relaxed"
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class DKIMConfig:
    selectors: Mapping[str, DKIMSelector] = field(default_factory=dict)
    sign: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReportDestination:
    """Where reports about a domain arrive: `<localpart>@<domain>`, kept in account/mailbox."""

    localpart: str
    domain: str
    account: str
    mailbox: str

    @property
    def address(self) -> str:
        return f"{self.localpart}@{self.domain}"


@dataclass(frozen=True)
class DomainConfig:
    name: str
    dkim: DKIMConfig = field(default_factory=DKIMConfig)
    tlsrpt: ReportDestination | None = None
    dmarc: ReportDestination | None = None
    disabled: bool = False


@dataclass(frozen=True)
class Postmaster:
    account: str = "postmaster"
    mailbox: str = "Postmaster"


@dataclass(frozen=True)
class HostTLSRPT:
    localpart: str
    account: str
    mailbox: str


@dataclass(frozen=True)
class DNSConfig:
    resolvers: tuple[tuple[str, int], ...] = ()
    trust_ad: bool = False
    timeout: float = 5.0
    # A local DNS data file whose answers take precedence (moxcli/localzone.py); insecure
    # unless local_zone_secure.
    local_zone: Path | None = None
    local_zone_secure: bool = False


@dataclass(frozen=True)
class TLSConfig:
    ca_files: tuple[Path, ...] = ()


@dataclass(frozen=True)
class ImapConfig:
    """Where the password for ``--imap`` imports comes from (never the command line)."""

    password_file: Path | None = None
    password_env: str = ""


@dataclass(frozen=True)
class NetworkConfig:
    smtp_port: int = 25
    https_port: int = 443


@dataclass(frozen=True)
class QueueConfig:
    """``[queue]``: ``delay_warning`` in seconds: None = mox's rule (a "delayed" DSN after the
    5th failed attempt), 0 = never, else once, at the first failed attempt that long after
    the message was queued."""

    delay_warning: float | None = None


@dataclass(frozen=True)
class MTASTSConfig:
    """``[mtasts]``: ``fetch_timeout``, one deadline in seconds for a whole policy fetch (address
    lookup, connect, TLS, request, the body however slowly it comes), wherever a policy is
    fetched: ``fetch mtasts``, ``check domain``, ``mtasts refresh``, delivery."""

    fetch_timeout: float = 60.0


@dataclass(frozen=True)
class StoreConfig:
    """``[store]``: ``seal_max_size``: the largest ``data.mdb`` (bytes) a writer seals for
    verifydata (moxcli/store/seal.py); 0 = never."""

    seal_max_size: int = DEFAULT_SEAL_MAX_SIZE


@dataclass(frozen=True)
class DeliveryConfig:
    """``[delivery]``: how long the SMTP client waits for a server and how much it takes from one.

    The timeouts are deadlines for the whole reply (however slowly it trickles in), as RFC
    5321 §4.5.3.2 gives them; ``session_timeout`` bounds a whole session (mox: 30 min).
    """

    greeting_timeout: float = 300.0  # RFC 5321 4.5.3.2.1 initial 220 message: 5 min
    command_timeout: float = 300.0  # 4.5.3.2.2 MAIL, 4.5.3.2.3 RCPT: 5 min (also EHLO, STARTTLS, RSET)
    data_init_timeout: float = 120.0  # 4.5.3.2.4 DATA initiation: 2 min
    data_block_timeout: float = 180.0  # 4.5.3.2.5 data block: each send must progress within 3 min
    data_end_timeout: float = 600.0  # 4.5.3.2.6 DATA termination: 10 min
    session_timeout: float = 1800.0  # mox's session deadline (docs/behaviour-notes.md §3.5)
    tls_handshake_timeout: float = 60.0  # the whole TLS handshake after STARTTLS (mox: 1 min)
    min_send_rate: int = 1024  # bytes/s the server must at least take while we send the message
    max_reply_lines: int = 100  # lines in one (multi-line) reply
    max_reply_bytes: int = 65536  # bytes in one reply
    max_messages_per_connection: int = 100  # transactions on one connection before a new one


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    hostname: str = "localhost"
    postmaster: Postmaster = field(default_factory=Postmaster)
    host_tlsrpt: HostTLSRPT | None = None
    domains: Mapping[str, DomainConfig] = field(default_factory=dict)
    no_outgoing_tls_reports: bool = False
    outgoing_tls_reports_for_all_success: bool = False
    no_outgoing_dmarc_reports: bool = False
    dmarc_report_format: str = "rfc7489"
    quota_message_size: int = 0
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    archive_max_entries: int = 1_000_000
    archive_max_ratio: int = 200
    dns: DNSConfig = field(default_factory=DNSConfig)
    tls: TLSConfig = field(default_factory=TLSConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    imap: ImapConfig = field(default_factory=ImapConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    mtasts: MTASTSConfig = field(default_factory=MTASTSConfig)
    store: StoreConfig = field(default_factory=StoreConfig)

    @property
    def exists(self) -> bool:
        return self.path is not None

    def domain(self, name: str) -> DomainConfig | None:
        """The configured domain by ASCII or Unicode name."""
        try:
            d = parse_domain(name)
        except DomainError:
            return None
        return self.domains.get(d.ascii)


class _Reader:
    """Walks one TOML table, remembering the dotted key path for error messages."""

    def __init__(self, file: Path, table: Mapping[str, Any], path: str = "") -> None:
        self.file = file
        self.table = dict(table)
        self.path = path
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.file}: {self.key(name)}: {msg}")

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = None, required: bool = False) -> Any:
        self.used.add(name)
        if name not in self.table:
            if required:
                raise self.error(name, "required key missing")
            return default
        value = self.table[name]
        if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
            kinds = (kind,) if isinstance(kind, type) else kind
            want = " or ".join(_toml_type(k.__name__) for k in kinds)
            raise self.error(name, f"expected {want}, got {_toml_type(type(value).__name__)} {value!r}")
        return value

    def sub(self, name: str, required: bool = False) -> _Reader | None:
        table = self.get(name, dict, required=required)
        return None if table is None else _Reader(self.file, table, self.key(name))

    def str_list(self, name: str) -> tuple[str, ...]:
        values = self.get(name, list, [])
        for i, v in enumerate(values):
            if not isinstance(v, str):
                raise self.error(f"{name}[{i}]", f"expected string, got {v!r}")
        return tuple(values)

    def path_value(self, name: str, required: bool = False) -> Path | None:
        value = self.get(name, str, required=required)
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.file.parent / p)

    def required_path(self, name: str) -> Path:
        path = self.path_value(name, required=True)
        assert path is not None  # required=True raised otherwise
        return path

    def done(self) -> None:
        for name in self.table:
            if name not in self.used:
                raise self.error(name, "unknown key")


def _toml_type(pyname: str) -> str:
    return {"str": "string", "int": "integer", "bool": "boolean", "dict": "table", "list": "array"}.get(pyname, pyname)


def _domain_name(r: _Reader, name: str, value: str) -> str:
    try:
        return parse_domain(value).ascii
    except DomainError as exc:
        raise r.error(name, f"invalid domain {clip(repr(value))}: {exc}") from None


def _localpart(r: _Reader, name: str, value: str) -> str:
    """A localpart that ends up in addresses, DNS zone lines and mail headers: printable, no
    spaces, no '@' (a quoted localpart is not worth the risk here)."""
    if not value or len(value.encode()) > 64 or any(not c.isprintable() or c.isspace() or c in '@"\\<>' for c in value):
        raise r.error(
            name,
            f"invalid localpart {clip(repr(value))}: "
            "printable characters only, no spaces, @, quotes or <>, at most 64 bytes",
        )
    return unicodedata.normalize("NFC", value)


def _account(r: _Reader, name: str, value: str) -> str:
    """Account names become directory names: a name, not a path (NFC, so é is é however typed)."""
    value = unicodedata.normalize("NFC", value)
    if (
        not value
        or value in (".", "..")
        or "/" in value
        or "\\" in value
        or any(not c.isprintable() for c in value)
        or len(value.encode()) > MAX_NAME
    ):
        raise r.error(
            name,
            f"invalid account name {clip(repr(value))}: "
            f"a name (no / or \\, not . or .., printable, at most {MAX_NAME} bytes)",
        )
    return value


def _mailbox(r: _Reader, name: str, value: str) -> str:
    value = unicodedata.normalize("NFC", value)
    if not value or any(not c.isprintable() for c in value) or len(value.encode()) > MAX_NAME:
        raise r.error(name, f"invalid mailbox name {clip(repr(value))}: printable, at most {MAX_NAME} bytes")
    return value


def clip(text: str, limit: int = 200) -> str:
    """Echoed input in an error line, cut to ``limit`` characters."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _destination(r: _Reader | None, default_domain: str) -> ReportDestination | None:
    if r is None:
        return None
    dest = ReportDestination(
        localpart=_localpart(r, "localpart", r.get("localpart", str, required=True)),
        domain=_domain_name(r, "domain", r.get("domain", str, default_domain)),
        account=_account(r, "account", r.get("account", str, required=True)),
        mailbox=_mailbox(r, "mailbox", r.get("mailbox", str, required=True)),
    )
    _address_size(r, "localpart", dest.localpart, dest.domain)
    r.done()
    return dest


def _address_size(r: _Reader, name: str, local: str, domain: str) -> None:
    """Reports go to and come from this address: it must fit RFC 5321 4.5.3.1's sizes."""
    why = domain_size_problem(local, parse_domain(domain))
    if why:
        raise r.error(name, f"address {clip(repr(local + '@' + domain))} is too long: {why}")


def _dkim(r: _Reader | None) -> DKIMConfig:
    if r is None:
        return DKIMConfig()
    selectors: dict[str, DKIMSelector] = {}
    sel_table = r.sub("selectors")
    if sel_table is not None:
        for sel_name in list(sel_table.table):
            s = sel_table.sub(sel_name)
            assert s is not None
            algorithm = s.get("algorithm", str, "ed25519")
            if algorithm not in DKIM_ALGORITHMS:
                raise s.error("algorithm", f"must be one of {', '.join(DKIM_ALGORITHMS)}, got {algorithm!r}")
            hash_name = s.get("hash", str, "sha256")
            if hash_name != "sha256":
                raise s.error("hash", f"only sha256 is supported, got {hash_name!r}")
            canon = s.get("canonicalization", str, "relaxed/relaxed")
            if canon not in ("relaxed/relaxed", "relaxed/simple", "simple/simple", "simple/relaxed"):
                raise s.error("canonicalization", f"invalid value {canon!r}")
            selectors[sel_name] = DKIMSelector(
                name=sel_name,
                private_key_file=s.required_path("private_key_file"),
                algorithm=algorithm,
                hash=hash_name,
                canonicalization=canon,
                headers=s.str_list("headers"),
            )
            s.done()
        sel_table.done()
    sign = r.str_list("sign") or tuple(selectors)
    for name in sign:
        if name not in selectors:
            raise r.error("sign", f"selector {name!r} is not defined in selectors")
    r.done()
    return DKIMConfig(selectors=selectors, sign=sign)


RESOLVER_FORMS = "an IP address (port 53), IPv4:port or [IPv6]:port"


def _resolver(r: _Reader, index: int, text: str) -> tuple[str, int]:
    """A resolver as ``IPv4:port``, ``[IPv6]:port``, or an address alone (port 53).

    An IPv6 address with a port needs the brackets (RFC 3986 3.2.2 host syntax): ``::1:53``
    is itself an address, so it is read as that address on port 53.
    """
    host, port = text, "53"
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if text.startswith("["):
            inner, sep, rest = text[1:].partition("]")
            ok = sep and ":" in inner and (rest == "" or rest.startswith(":"))
            host, port = inner, rest[1:] if rest else "53"
        else:
            host, sep, port = text.rpartition(":")
            ok = bool(sep) and ":" not in host
        if not ok:
            raise r.error(f"resolvers[{index}]", f"expected {RESOLVER_FORMS}, got {text!r}") from None
    try:
        ipaddress.ip_address(host)
        if not (port.isascii() and port.isdigit()):
            raise ValueError
        port_num = int(port)
        if not 0 < port_num < 65536:
            raise ValueError
    except ValueError:
        raise r.error(f"resolvers[{index}]", f"expected {RESOLVER_FORMS}, got {text!r}") from None
    return host, port_num


def _port(r: _Reader, name: str, default: int) -> int:
    value = r.get(name, int, default)
    if not 0 < value < 65536:
        raise r.error(name, f"port out of range: {value}")
    return value


_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def _duration(r: _Reader, name: str) -> float | None:
    """A duration: seconds as an integer, or a string such as "4h", "1h30m", "2d", "0"."""
    value = r.get(name, (int, str), None)
    if value is None:
        return None
    if isinstance(value, bool):
        raise r.error(name, 'expected a duration such as "4h" or seconds')
    if isinstance(value, int):
        if value < 0:
            raise r.error(name, "must not be negative")
        return float(value)
    if value.strip() == "0":
        return 0.0
    m = _DURATION.fullmatch(value.strip())
    if not value.strip() or m is None:
        raise r.error(name, f'expected a duration such as "4h", "1h30m" or "2d", got {value!r}')
    d, h, mi, sec = (int(g or 0) for g in m.groups())
    return float(d * 86400 + h * 3600 + mi * 60 + sec)


def _delivery(r: _Reader | None) -> DeliveryConfig:
    if r is None:
        return DeliveryConfig()
    defaults = DeliveryConfig()
    values: dict[str, Any] = {}
    for name in fields(DeliveryConfig):
        default = getattr(defaults, name)
        if isinstance(default, float):
            v = r.get(name, (int, float), default)
            # 1e308 or nan would make a deadline that never comes; a day is plenty for any step.
            if not 0 < v <= 86400:
                raise r.error(name, f"must be a number of seconds above 0 and at most 86400, got {v!r}")
            values[name] = float(v)
        else:
            v = r.get(name, int, default)
            if not 0 < v <= 1 << 30:
                raise r.error(name, f"must be an integer from 1 to {1 << 30}, got {v!r}")
            values[name] = v
    if values["max_reply_bytes"] < 512:
        # RFC 5321 4.5.3.1.5: a reply line alone may be 512 octets.
        raise r.error("max_reply_bytes", f"must be at least 512, got {values['max_reply_bytes']}")
    r.done()
    return DeliveryConfig(**values)


def parse_config(text: str, file: Path) -> Config:
    """Validate TOML text; ``file`` names the file in errors and anchors relative paths."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: invalid TOML: {clip(str(exc))}") from None
    except RecursionError:  # tomllib recurses per nesting level of arrays and inline tables
        raise ConfigError(f"{file}: invalid TOML: nested too deeply") from None
    r = _Reader(file, data)
    hostname_text = r.get("hostname", str, "localhost")
    hostname = _domain_name(r, "hostname", hostname_text) if hostname_text != "localhost" else "localhost"

    pm = r.sub("postmaster")
    postmaster = Postmaster()
    if pm is not None:
        postmaster = Postmaster(
            account=_account(pm, "account", pm.get("account", str, "postmaster")),
            mailbox=_mailbox(pm, "mailbox", pm.get("mailbox", str, "Postmaster")),
        )
        pm.done()

    ht = r.sub("host_tlsrpt")
    host_tlsrpt = None
    if ht is not None:
        host_tlsrpt = HostTLSRPT(
            localpart=_localpart(ht, "localpart", ht.get("localpart", str, "tlsreports")),
            account=_account(ht, "account", ht.get("account", str, postmaster.account)),
            mailbox=_mailbox(ht, "mailbox", ht.get("mailbox", str, "TLSRPT")),
        )
        _address_size(ht, "localpart", host_tlsrpt.localpart, hostname)
        ht.done()

    domains: dict[str, DomainConfig] = {}
    dt = r.sub("domains")
    if dt is not None:
        for name in list(dt.table):
            ascii_name = _domain_name(dt, name, name)
            d = dt.sub(name)
            assert d is not None
            domains[ascii_name] = DomainConfig(
                name=ascii_name,
                dkim=_dkim(d.sub("dkim")),
                tlsrpt=_destination(d.sub("tlsrpt"), ascii_name),
                dmarc=_destination(d.sub("dmarc"), ascii_name),
                disabled=d.get("disabled", bool, False),
            )
            d.done()
        dt.done()

    dns_cfg = DNSConfig()
    dn = r.sub("dns")
    if dn is not None:
        resolvers = tuple(_resolver(dn, i, t) for i, t in enumerate(dn.str_list("resolvers")))
        timeout = dn.get("timeout", (int, float), 5.0)
        if not (math.isfinite(timeout) and 0 < timeout <= MAX_DNS_TIMEOUT):
            raise dn.error(
                "timeout", f"must be a number of seconds above 0 and at most {MAX_DNS_TIMEOUT}, got {timeout}"
            )
        dns_cfg = DNSConfig(
            resolvers=resolvers,
            trust_ad=dn.get("trust_ad", bool, False),
            timeout=float(timeout),
            local_zone=dn.path_value("local_zone"),
            local_zone_secure=dn.get("local_zone_secure", bool, False),
        )
        dn.done()

    tls_cfg = TLSConfig()
    tl = r.sub("tls")
    if tl is not None:
        files = []
        for i, f in enumerate(tl.str_list("ca_files")):
            p = Path(f).expanduser()
            p = p if p.is_absolute() else file.parent / p
            if not p.is_file():
                raise tl.error(f"ca_files[{i}]", f"no such file: {p}")
            files.append(p)
        tls_cfg = TLSConfig(ca_files=tuple(files))
        tl.done()

    net = NetworkConfig()
    nt = r.sub("network")
    if nt is not None:
        net = NetworkConfig(smtp_port=_port(nt, "smtp_port", 25), https_port=_port(nt, "https_port", 443))
        nt.done()

    imap_cfg = ImapConfig()
    im = r.sub("imap")
    if im is not None:
        pw_file = im.path_value("password_file")
        pw_env = im.get("password_env", str, "")
        if pw_file is not None and pw_env:
            raise im.error("password_env", "set password_file or password_env, not both")
        imap_cfg = ImapConfig(password_file=pw_file, password_env=pw_env)
        im.done()

    queue_cfg = QueueConfig()
    qt = r.sub("queue")
    if qt is not None:
        queue_cfg = QueueConfig(delay_warning=_duration(qt, "delay_warning"))
        qt.done()

    delivery = _delivery(r.sub("delivery"))

    mtasts_cfg = MTASTSConfig()
    mt = r.sub("mtasts")
    if mt is not None:
        fetch_timeout = mt.get("fetch_timeout", (int, float), MTASTSConfig.fetch_timeout)
        # 1e308 or nan would make a deadline that never comes (a job's lock held meanwhile).
        if isinstance(fetch_timeout, bool) or not 0 < fetch_timeout <= MAX_MTASTS_FETCH_TIMEOUT:
            raise mt.error(
                "fetch_timeout",
                f"must be a number of seconds above 0 and at most {MAX_MTASTS_FETCH_TIMEOUT}, got {fetch_timeout!r}",
            )
        mtasts_cfg = MTASTSConfig(fetch_timeout=float(fetch_timeout))
        mt.done()

    store_cfg = StoreConfig()
    sc = r.sub("store")
    if sc is not None:
        seal_max = sc.get("seal_max_size", int, DEFAULT_SEAL_MAX_SIZE)
        if not 0 <= seal_max <= MAX_SEAL_MAX_SIZE:
            raise sc.error("seal_max_size", f"must be between 0 (no seal) and 2^40 bytes, got {seal_max}")
        store_cfg = StoreConfig(seal_max_size=seal_max)
        sc.done()

    fmt = r.get("dmarc_report_format", str, "rfc7489")
    if fmt not in DMARC_REPORT_FORMATS:
        raise r.error("dmarc_report_format", f"must be one of {', '.join(DMARC_REPORT_FORMATS)}, got {fmt!r}")
    quota = r.get("quota_message_size", int, 0)
    if quota < 0:
        raise r.error("quota_message_size", "must not be negative")
    max_size = r.get("max_message_size", int, DEFAULT_MAX_MESSAGE_SIZE)
    if not 0 < max_size <= 1 << 40:
        raise r.error("max_message_size", "must be between 1 and 2^40 bytes")
    max_entries = r.get("archive_max_entries", int, 1_000_000)
    if not 0 < max_entries <= 1 << 32:
        raise r.error("archive_max_entries", "must be between 1 and 2^32")
    max_ratio = r.get("archive_max_ratio", int, 200)
    if not 1 <= max_ratio <= 100_000:
        raise r.error("archive_max_ratio", "must be between 1 and 100000")

    cfg = Config(
        path=file,
        hostname=hostname,
        postmaster=postmaster,
        host_tlsrpt=host_tlsrpt,
        domains=domains,
        no_outgoing_tls_reports=r.get("no_outgoing_tls_reports", bool, False),
        outgoing_tls_reports_for_all_success=r.get("outgoing_tls_reports_for_all_success", bool, False),
        no_outgoing_dmarc_reports=r.get("no_outgoing_dmarc_reports", bool, False),
        dmarc_report_format=fmt,
        quota_message_size=quota,
        max_message_size=max_size,
        archive_max_entries=max_entries,
        archive_max_ratio=max_ratio,
        dns=dns_cfg,
        tls=tls_cfg,
        network=net,
        imap=imap_cfg,
        queue=queue_cfg,
        delivery=delivery,
        mtasts=mtasts_cfg,
        store=store_cfg,
    )
    r.done()
    return cfg


def load_config(file: Path, required: bool = False) -> Config:
    """Read ``file``; a missing optional file gives the defaults (commands that need no config)."""
    from moxcli.inputs import read_regular

    if not os.path.lexists(file):
        if required:
            raise ConfigError(f"{file}: config file not found (create one with `moxcli init DOMAIN --hostname HOST`)")
        return Config()
    try:
        text = read_regular(file, MAX_CONFIG_SIZE, "config", too_large=ConfigError).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: cannot read config: {exc}") from None
    except UsageError as exc:
        raise ConfigError(str(exc)) from None
    return parse_config(text, file)
