"""The MTA-STS policy file (RFC 8461 §3.2) and MX matching (§4.1). Pure: no I/O.

Parsing follows mox (docs/behaviour-notes.md §4.2): case-sensitive keys and values, first ``mode``/``max_age``
wins, LF or CRLF line endings with at most one after the last line. Where mox is more liberal
than the RFC (no 31557600 cap on ``max_age``, no check of the media type) we accept like mox
and :func:`lint` says what a strict sender would reject.
"""

from __future__ import annotations

from typing import Any

from moxcli.domain import Domain, DomainError, parse_domain
from moxcli.jsonfmt import Finding
from moxcli.values import dataclass, field

VERSION = "STSv1"
MODES = ("enforce", "testing", "none")
MAX_AGE_RFC = 31557600  # RFC 8461 §3.2: "up to 31557600"
_MAX_AGE_MOX = 2**31 - 1

_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


class PolicyParseError(ValueError):
    """The policy text is not a valid MTA-STS policy; the message names the line."""


@dataclass(frozen=True)
class MX:
    """One ``mx:`` pattern: a domain, optionally with a ``*.`` wildcard for one label."""

    domain: Domain
    wildcard: bool = False

    def __str__(self) -> str:
        return ("*." if self.wildcard else "") + self.domain.name

    @property
    def ascii(self) -> str:
        return ("*." if self.wildcard else "") + self.domain.ascii

    def matches(self, host: Domain) -> bool:
        """RFC 8461 §4.1: a wildcard matches exactly one extra left-most label."""
        if not self.wildcard:
            return host.ascii == self.domain.ascii
        _, dot, rest = host.ascii.partition(".")
        return bool(dot) and rest == self.domain.ascii


@dataclass(frozen=True)
class Policy:
    version: str
    mode: str
    max_age: int
    mx: tuple[MX, ...] = ()
    extensions: tuple[tuple[str, str], ...] = field(default=())

    def matches_mx(self, host: str | Domain) -> bool:
        """Whether an MX host name is allowed by this policy (RFC 8461 §4.1)."""
        if not isinstance(host, Domain):
            try:
                host = parse_domain(host, lax=True)
            except DomainError:
                return False
        return any(m.matches(host) for m in self.mx)

    def format(self) -> str:
        """The policy as mox writes it (docs/behaviour-notes.md §4.2): extensions are not written."""
        lines = [f"version: {self.version}", f"mode: {self.mode}", f"max_age: {self.max_age}"]
        lines += [f"mx: {m}" for m in self.mx]
        return "".join(line + "\n" for line in lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "mode": self.mode,
            "mx": [str(m) for m in self.mx],
            "max_age": self.max_age,
            "extensions": [{"key": k, "value": v} for k, v in self.extensions],
        }


def parse_mx(text: str) -> MX:
    """An ``mx:`` value: ``[*.]`` then an LDH domain in A-label form (RFC 8461 §3.2)."""
    wildcard = text.startswith("*.")
    name = text[2:] if wildcard else text
    if not name.isascii():
        raise PolicyParseError(f"mx {text!r}: domain must be specified in A labels, not U labels")
    for label in name.split("."):
        if not label or label[0] not in _ALNUM or any(c not in _ALNUM and c != "-" for c in label):
            raise PolicyParseError(f"mx {text!r}: invalid domain")
    try:
        return MX(parse_domain(name.lower()), wildcard)
    except DomainError as exc:
        raise PolicyParseError(f"mx {text!r}: {exc}") from None


def _key(line: str) -> tuple[str, int]:
    # Same key rule as the record (mox quirk: "-" and "." may start a key; "_" may not).
    i = 0
    while i < len(line) and i < 32 and (line[i] in _KEY_CHARS or (line[i] == "_" and i > 0)):
        i += 1
    if i == 0:
        raise PolicyParseError("expected a key")
    return line[:i], i


def parse_policy(text: str) -> Policy:
    """Parse a policy file; raises PolicyParseError naming the line."""
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()  # one line ending after the last field
    version = mode = None
    max_age: int | None = None
    mxs: list[MX] = []
    extensions: list[tuple[str, str]] = []
    for n, raw in enumerate(lines, 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        try:
            key, i = _key(line)
            if line[i : i + 1] != ":":
                raise PolicyParseError(f"expected ':' after key {key!r}")
            i += 1
            while i < len(line) and line[i] in " \t":
                i += 1
            value = line[i:]
            if key == "version":
                if value.rstrip(" \t") != VERSION:
                    raise PolicyParseError(f"version must be {VERSION}")
                version = version or VERSION
            elif key == "mode":
                v = value.rstrip(" \t")
                if v not in MODES:
                    raise PolicyParseError(f"mode {v!r} is not one of {', '.join(MODES)}")
                mode = mode or v  # first occurrence wins (mox)
            elif key == "max_age":
                v = value.rstrip(" \t")
                # RFC 8461 §3.2: 1*10DIGIT; mox also caps at 2^31-1 (not at 31557600).
                if not (1 <= len(v) <= 10 and v.isascii() and v.isdigit()) or int(v) > _MAX_AGE_MOX:
                    raise PolicyParseError(f"max_age {v!r} is not a number of at most 10 digits below 2^31")
                max_age = int(v) if max_age is None else max_age
            elif key == "mx":
                v = value.rstrip(" \t")
                if not v:
                    raise PolicyParseError("empty mx")
                mxs.append(parse_mx(v))
            else:
                extensions.append((key, _ext_value(value)))
        except PolicyParseError as exc:
            raise PolicyParseError(f"line {n}: {exc}") from None
    if version is None:
        raise PolicyParseError("missing version")
    if mode is None:
        raise PolicyParseError("missing mode")
    if max_age is None:
        raise PolicyParseError("missing max_age")
    if not mxs and mode != "none":
        raise PolicyParseError(f"missing mx (required for mode {mode})")
    return Policy(version, mode, max_age, tuple(mxs), tuple(extensions))


def _ext_value(value: str) -> str:
    # RFC 8461 §3.2 sts-policy-ext-value = sts-policy-vchar [*(%x20 / sts-policy-vchar)
    # sts-policy-vchar], with UTF-8 allowed. A TAB ends the value; then only WSP may follow.
    end = 0
    while end < len(value) and (
        0x21 <= ord(value[end]) <= 0x7E or ord(value[end]) >= 0x80 or (value[end] == " " and end > 0)
    ):
        end += 1
    v = value[:end].rstrip(" ")
    if not v:
        raise PolicyParseError("empty extension value")
    if value[end:].strip(" \t"):
        raise PolicyParseError(f"invalid character {value[end]!r} in extension value")
    return v


def lint(policy: Policy, content_type: str = "text/plain") -> list[Finding]:
    """Warnings about an accepted policy that a stricter sender would treat differently."""
    warnings = []
    if policy.max_age > MAX_AGE_RFC:
        warnings.append(
            Finding(
                "max-age-too-long",
                f"max_age {policy.max_age} is above the RFC 8461 §3.2 maximum of {MAX_AGE_RFC} (mox accepts it)",
            )
        )
    elif policy.max_age <= 86400:
        warnings.append(
            Finding(
                "max-age-short",
                f"max_age {policy.max_age} is one day or less; the recommended period is in weeks (RFC 8461 §3.2)",
            )
        )
    if policy.mode == "testing":
        warnings.append(
            Finding(
                "mode-testing",
                "mode testing: failures are reported but mail is delivered anyway; "
                "change to enforce when reports are clean",
            )
        )
    elif policy.mode == "none":
        warnings.append(Finding("mode-none", "mode none: the domain does not require TLS"))
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "text/plain":
        warnings.append(
            Finding(
                "policy-content-type",
                f"served as {content_type or 'no content type'!r}, not text/plain: RFC 8461 §3.2 senders "
                "SHOULD check it (mox does not)",
            )
        )
    return warnings
