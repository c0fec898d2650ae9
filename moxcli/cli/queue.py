"""`moxcli queue ...` (the outgoing queue and its deliveries) and `moxcli tlsresults list`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from moxcli.cli import output
from moxcli.context import AppContext


def _time(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)


def _short_time(t: float | None) -> str:
    return "" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _msg_json(m: Any, known: Any) -> dict[str, Any]:
    """The `queue show --json` object; ``known`` is the recipient domain's DomainTLS or None."""
    return {
        "id": m.id,
        "base_id": m.base_id,
        "mail_from": m.mail_from or None,  # null: the null reverse-path <>
        "recipient": m.recipient,
        "recipient_domain": output.a_label(m.recipient_domain),
        "subject": m.subject or None,
        "size": m.size,
        "created": _time(m.created),
        "require_tls": m.require_tls,
        "is_tls_report": m.is_tls_report,
        "is_dmarc_report": m.is_dmarc_report,
        "sender_account": m.sender_account,
        "max_attempts": m.max_attempts,
        "attempts": m.attempts,
        "next_attempt": _time(m.next_attempt),
        "last_attempt": _time(m.last_attempt),
        "last_error": m.last_error or None,
        "last_code": m.last_code or None,
        "last_enhanced": m.last_enhanced or None,
        "hold": m.hold,
        "in_progress": _time(m.in_progress),
        # a list, not an object keyed by host name (docs/json.md: keys are names)
        "dialed_ips": [{"host": h, "ips": ips} for h, ips in m.dialed_ips.items()],
        "delayed_dsn": _time(m.delayed_dsn),
        "recipient_domain_tls": None if known is None else _domain_json(known),
    }


def _require_tls_text(v: bool | None) -> str:
    return {None: "", True: "requiretls", False: "tls-required-no"}[v]


@click.group("queue")
def queue_group() -> None:
    """The outgoing queue: add, list, run deliveries."""


@queue_group.command("add")
@click.option("--from", "mail_from", required=True, help="Envelope sender (MAIL FROM); '' for the null sender.")
@click.option(
    "--to",
    "recipients",
    required=True,
    multiple=True,
    help="Envelope recipient; repeat for more (one queue entry each).",
)
@click.option("--requiretls", is_flag=True, help="Require verified TLS on every hop (RFC 8689 REQUIRETLS).")
@click.option(
    "--account",
    "sender_account",
    help="Local account that gets the DSN if delivery fails [default: the postmaster account].",
)
@click.option("--max-attempts", type=click.IntRange(min=1), help="Give up after this many attempts [default 8].")
@click.option(
    "--json", "as_json", is_flag=True, help="Output JSON: ids, require_tls, converted_lf, added_headers, size."
)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default="-")
@click.pass_obj
def queue_add_cmd(
    app: AppContext,
    mail_from: str,
    recipients: tuple[str, ...],
    requiretls: bool,
    sender_account: str | None,
    max_attempts: int | None,
    as_json: bool,
    file: Path,
) -> None:
    """Queue a message (RFC 5322 file, or stdin) for delivery.

    A `TLS-Required: No` header (RFC 8689) is honoured unless --requiretls is given. A file
    whose lines all end in a bare LF gets CRLF line ends; a bare CR, CRLF mixed with bare LF,
    a NUL octet or a line over 998 octets is refused (exit 2, with byte offset and line), and
    nothing is queued. Date: and Message-ID: are added when missing, and a Received: line.
    Nothing is sent until `queue run`.

    \b
    Example:
      moxcli queue add --from me@example.org --to you@example.net message.eml
    """
    from moxcli.delivery import queue as dq

    data = dq.read_message(file)
    name = "stdin" if str(file) == "-" else str(file)
    with app.open_store() as st:
        res = dq.submit(
            st,
            app.data_dir,
            hostname=app.config().hostname,
            mail_from=mail_from,
            recipients=list(recipients),
            data=data,
            requiretls=requiretls,
            max_attempts=max_attempts,
            sender_account=sender_account,
            source=name if isinstance(name, str) and name and not name.startswith("<") else "stdin",
        )
    if as_json:
        output.emit_json(
            {
                "ids": res.ids,
                "require_tls": res.require_tls,
                "converted_lf": res.converted_lf,
                "added_headers": list(res.added_headers),
                "size": res.size,
            }
        )
        return
    for i, rcpt in zip(res.ids, recipients, strict=True):
        click.echo(f"{i}\t{rcpt}")


@queue_group.command("list")
@output.format_options("Output a JSON list of messages (keys as in `queue show --json`).")
@click.pass_obj
def queue_list_cmd(app: AppContext, fmt: str) -> None:
    """List queued messages.

    \b
    Example:
      moxcli queue list
    """
    from moxcli.delivery import queue as dq

    with app.open_store(readonly=True) as st:
        listed = dq.list_messages_and_domains(st)
    if fmt == "json":
        output.emit_json([_msg_json(m, known) for m, known in listed])
        return
    msgs = [m for m, _ in listed]
    if not msgs and fmt == "table":
        output.info("queue is empty")
        return
    output.table(
        None,
        ["id", "recipient", "from", "size", "attempts", "next attempt (UTC)", "flags", "last error"],
        [
            (
                m.id,
                m.recipient,
                m.mail_from or "<>",
                m.size,
                m.attempts,
                _short_time(m.next_attempt),
                " ".join(
                    x
                    for x in (
                        "hold" if m.hold else "",
                        "attempting" if m.in_progress else "",
                        "tlsrpt" if m.is_tls_report else "",
                        "dmarc" if m.is_dmarc_report else "",
                        _require_tls_text(m.require_tls),
                    )
                    if x
                ),
                m.last_error[:80] if fmt == "table" else m.last_error,
            )
            for m in msgs
        ],
        fmt,
    )


@queue_group.command("show")
@click.argument("msg_id", metavar="ID", type=int)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help=(
        "Output JSON: id, base_id, mail_from, recipient, recipient_domain, subject, size, created, "
        "require_tls, is_tls_report, is_dmarc_report, sender_account, max_attempts, attempts, "
        "next_attempt, last_attempt, last_error, last_code, last_enhanced, hold, in_progress, "
        "dialed_ips, delayed_dsn, recipient_domain_tls (as in `domains list --json`, null when nothing "
        "is known)."
    ),
)
@click.pass_obj
def queue_show_cmd(app: AppContext, msg_id: int, as_json: bool) -> None:
    """Show one queued message.

    \b
    Example:
      moxcli queue show 12
    """
    from moxcli.delivery import queue as dq

    with app.open_store(readonly=True) as st:
        m, known = dq.get_message_and_domain(st, msg_id)
    d = _msg_json(m, known)
    if as_json:
        output.emit_json(d)
        return

    def text(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.strftime("%Y-%m-%d %H:%M:%S UTC")
        return output.to_json(v, indent=None) if isinstance(v, (dict, list, bool)) or v is None else v

    d["mail_from"] = m.mail_from or "<>"
    output.kv(f"queue message {m.id}", [(k, text(v)) for k, v in d.items() if k != "id"])


def _domain_json(d: Any) -> dict[str, Any]:
    return {
        "domain": d.domain,
        "starttls": d.starttls,
        "requiretls": d.requiretls,
        "updated": _time(d.updated),
        "host": d.host,
        "starttls_seen": _time(d.starttls_seen),
        "requiretls_seen": _time(d.requiretls_seen),
        "downgraded": _time(d.downgraded),
    }


@click.group("domains")
def domains_group() -> None:
    """What deliveries learned about recipient domains: STARTTLS, REQUIRETLS."""


@domains_group.command("list")
@click.argument("domain", required=False)
@output.format_options(
    "Output a JSON list: domain, starttls, requiretls, updated, host, starttls_seen, requiretls_seen, downgraded."
)
@click.pass_obj
def domains_list_cmd(app: AppContext, domain: str | None, fmt: str) -> None:
    """List recipient domains with the last delivery's STARTTLS use and REQUIRETLS offer.

    Recorded at each delivery (spec §3.7, as mox keeps it): `starttls` whether the last
    delivery used STARTTLS, `requiretls` whether its server offered REQUIRETLS, the times
    each was last seen, and `downgraded` when a message with `TLS-Required: No` went in
    plaintext after STARTTLS had been seen. While the last delivery used STARTTLS, `queue run`
    does not deliver to the domain in plaintext (see `domains forget`).

    \b
    Example:
      moxcli domains list
      moxcli domains list example.org --format json
    """
    from moxcli.delivery import queue as dq

    with app.open_store(readonly=True) as st:
        known = dq.known_domains(st, domain)
    if fmt == "json":
        output.emit_json([_domain_json(d) for d in known])
        return
    if not known and fmt == "table":
        output.info("no deliveries recorded")
        return
    output.table(
        None,
        ["domain", "STARTTLS", "REQUIRETLS", "last delivery (UTC)", "MX host", "STARTTLS seen", "downgraded"],
        [
            (
                d.domain,
                "yes" if d.starttls else "no",
                "yes" if d.requiretls else "no",
                _short_time(d.updated),
                d.host,
                _short_time(d.starttls_seen),
                _short_time(d.downgraded),
            )
            for d in known
        ],
        fmt,
    )


@domains_group.command("forget")
@click.argument("domain")
@click.pass_obj
def domains_forget_cmd(app: AppContext, domain: str) -> None:
    """Forget what deliveries learned about a recipient domain.

    While a domain's last delivery used STARTTLS, `queue run` refuses to deliver to it in
    plaintext (temporary failure); forget it when the domain really stopped offering
    STARTTLS. Exit 2 when nothing was recorded for it.

    \b
    Example:
      moxcli domains forget example.org
    """
    from moxcli.delivery import queue as dq

    with app.open_store() as st:
        name = dq.forget_domain(st, domain)
    click.echo(f"{name}\tforgotten")


def _each(app: AppContext, ids: tuple[int, ...], action: str) -> None:
    """All of the ids or none: an unknown id changes nothing (exit 2 naming it)."""
    from moxcli.delivery import queue as dq

    with app.open_store() as st:
        dq.change(st, app.data_dir, list(ids), action)
    for i in dict.fromkeys(ids):
        click.echo(f"{i}\t{action if action != 'drop' else 'dropped'}")


@queue_group.command("drop")
@click.argument("ids", metavar="ID...", nargs=-1, required=True, type=int)
@click.pass_obj
def queue_drop_cmd(app: AppContext, ids: tuple[int, ...]) -> None:
    """Remove messages from the queue without delivering them (no DSN).

    \b
    Example:
      moxcli queue drop 12 13
    """
    _each(app, ids, "drop")


@queue_group.command("hold")
@click.argument("ids", metavar="ID...", nargs=-1, required=True, type=int)
@click.pass_obj
def queue_hold_cmd(app: AppContext, ids: tuple[int, ...]) -> None:
    """Keep messages queued without attempting them until released.

    \b
    Example:
      moxcli queue hold 12
    """
    _each(app, ids, "hold")


@queue_group.command("release")
@click.argument("ids", metavar="ID...", nargs=-1, required=True, type=int)
@click.pass_obj
def queue_release_cmd(app: AppContext, ids: tuple[int, ...]) -> None:
    """Release held messages (their next attempt time is kept).

    \b
    Example:
      moxcli queue release 12
    """
    _each(app, ids, "release")


@queue_group.command("retry")
@click.argument("ids", metavar="ID...", nargs=-1, required=True, type=int)
@click.pass_obj
def queue_retry_cmd(app: AppContext, ids: tuple[int, ...]) -> None:
    """Make messages due now (and release them); the attempt count is kept.

    \b
    Example:
      moxcli queue retry 12 && moxcli queue run --id 12
    """
    _each(app, ids, "retry")


_ATTEMPT_COLUMNS = [
    "id",
    "recipient",
    "outcome",
    "attempt",
    "host",
    "ip",
    "tls",
    "code",
    "enhanced",
    "next attempt (UTC)",
    "dsn",
    "error",
]


def _attempt_row(r: Any) -> tuple[Any, ...]:
    nxt = _short_time(r.next_attempt) if r.next_attempt else ""
    return (
        r.id,
        r.recipient,
        r.outcome,
        r.attempt,
        r.host,
        r.ip,
        r.tls or "none",
        r.code,
        r.enhanced,
        nxt,
        r.dsn,
        r.error,
    )


def _attempt_line(r: Any) -> str:
    parts = [str(r.id), r.recipient, r.outcome, f"attempt={r.attempt}"]
    if r.host:
        parts.append(f"host={r.host}")
    if r.ip:
        parts.append(f"ip={r.ip}")
    parts.append(f"tls={r.tls or 'none'}")
    if r.code:
        parts.append(f"code={r.code}" + (f" {r.enhanced}" if r.enhanced else ""))
    if r.next_attempt:
        parts.append(f"next={_short_time(r.next_attempt)}")
    if r.dsn:
        parts.append("dsn")
    if r.error:
        parts.append(f"error={r.error}")
    return output.safe(" ".join(parts))


@queue_group.command("run")
@click.option("--id", "ids", multiple=True, type=int, help="Attempt this message now, due or not (repeatable).")
@click.option("--domain", help="Only due messages for this recipient domain.")
@output.format_options(
    "NDJSON, one object per attempt: id, recipient, outcome, attempt, host, ip, tls, code, "
    "enhanced, error, remote_reply, next_attempt, dsn, duration.",
    rows="one row per attempt, written as it ends",
)
@click.pass_obj
def queue_run_cmd(app: AppContext, ids: tuple[int, ...], domain: str | None, fmt: str) -> None:
    """Attempt every due message once, then exit (run it from cron or a timer).

    One line per attempt: id, recipient, outcome (delivered, deferred or failed), host,
    address, TLS (dane, pkix, unverified or none), reply code, next attempt, error. One
    summary line ends every run on stderr, in every format (counts of delivered, deferred,
    failed and interrupted messages and of DSNs stored, or "nothing to do"). Exit
    status is 0 whatever the replies (they are in the output); 2 for bad arguments or
    config; 3 when another `queue run` holds the lock, when a server broke a deadline or a
    reply limit, or when SIGTERM/SIGINT stopped the run (the session is ended, the attempt
    recorded as interrupted; a second signal exits at once).

    \b
    Example:
      moxcli queue run
      moxcli queue run --domain example.net --json
    """
    from moxcli import stop
    from moxcli.delivery.deliver import RunTally, run_queue
    from moxcli.errors import TemporaryError

    cfg = app.config()
    tally = RunTally()
    as_json = fmt == "json"
    rows = output.RowStream(_ATTEMPT_COLUMNS, fmt) if fmt in ("tsv", "csv") else None

    def show(r: Any) -> None:
        tally.add(r)
        if as_json:
            output.emit_ndjson(r.to_json())
        elif rows is not None:
            rows.write([_attempt_row(r)])
        else:
            click.echo(_attempt_line(r))
            sys.stdout.flush()

    selected: list[int] = []  # the number of messages the run selected, once it began

    def start(n: int) -> None:
        selected.append(n)

    with stop.handling(), app.open_store() as st:
        try:
            run_queue(
                st,
                Path(app.data_dir),
                cfg,
                ids=list(ids) or None,
                domain=domain,
                on_attempt=show,
                keep_results=False,
                on_start=start,
            )
        except (stop.Interrupted, Exception):
            # What got done before the signal or the error (disk full, a store error); the error
            # line follows. An error before the run began (the lock held, say) has no summary.
            if selected:
                output.info(_run_summary(tally, selected[0]))
            raise
    if rows is not None:
        rows.start()  # the header also when nothing was due
    # The job summary is a message on stderr in every format (docs/json.md, "Job summaries").
    output.info(_run_summary(tally, selected[0] if selected else 0))
    if tally.stalled:
        raise TemporaryError(
            f"queue run: {tally.stalled} message(s) deferred because a server broke a deadline or a reply limit"
        )


def _run_summary(tally: Any, selected: int) -> str:
    """The one summary line of a `queue run` (docs/delivery.md, "Summary line"): "nothing to do"
    only when no message was due (not when an error or a signal came before the first attempt)."""
    if not tally.messages and not selected:
        return "nothing to do"
    return (
        f"{tally.messages} message(s) attempted: {tally.delivered} delivered, {tally.deferred} deferred, "
        f"{tally.failed} failed, {tally.interrupted} interrupted, {tally.dsns} DSN(s) stored"
    )


@click.group("tlsresults")
def tlsresults_group() -> None:
    """TLS results recorded by deliveries."""


@tlsresults_group.command("list")
@click.option("--day", metavar="YYYY-MM-DD", help="Only this UTC day (YYYY-MM-DD or YYYYMMDD).")
@output.format_options(
    "Output a JSON list of rows: id, day, policy_domain, recipient_domain, created, "
    "updated, is_host, send_report, sent_to_recipient_domain, "
    "recipient_domain_reporting_addresses, sent_to_policy_domain, results (RFC 8460 policy "
    "results)."
)
@click.pass_obj
def tlsresults_list_cmd(app: AppContext, day: str | None, fmt: str) -> None:
    """List the recorded TLS results (what the daily TLS reports are made of).

    \b
    Example:
      moxcli tlsresults list --day 20260301
    """
    from moxcli.tlsrpt import resultsdb as tlsresults

    day = output.day_arg("--day", day)
    with app.open_store(readonly=True) as st, st.read() as tx:
        rows = list(tlsresults.iter_rows(tx, day=day))
    if fmt == "json":
        output.emit_json(rows)
        return
    if not rows and fmt == "table":
        output.info("no tls results")
        return
    table_rows = []
    for r in rows:
        for res in r.results:
            details = ", ".join(
                f"{d.result_type}{'/' + d.failure_reason_code if d.failure_reason_code else ''} "
                f"x{d.failed_session_count}"
                for d in res.details
            )
            table_rows.append(
                (
                    output.day(r.day_utc),
                    r.policy_domain,
                    r.recipient_domain,
                    "host" if r.is_host else "domain",
                    "yes" if r.send_report else "no",
                    res.policy.type,
                    res.success,
                    res.failure,
                    details,
                )
            )
    output.table(
        None,
        ["day", "policy domain", "recipient domain", "kind", "report", "policy", "ok", "failed", "failure details"],
        table_rows,
        fmt,
    )
