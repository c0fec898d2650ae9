"""One SMTP connection for consecutive messages to the same MX host: RSET between
transactions, at most `max_messages_per_connection` per connection, a new connection when the
kept one is gone; ids only held for the run (results streamed with keep_results=False)."""

from __future__ import annotations

import pytest
from smtpstub import NORMAL, ONE_MESSAGE, stub

from moxcli.config import parse_config
from moxcli.delivery import deliver
from moxcli.delivery import queue as q
from moxcli.store import Store

BODY = b"From: <a@moxcli.test>\r\nSubject: reuse\r\n\r\nhello %d\r\n"


@pytest.mark.parametrize(
    "mode,per_connection,connections",
    [(NORMAL, 100, 1), (NORMAL, 2, 3), (ONE_MESSAGE, 100, 5)],
    ids=["one-connection", "bounded", "server-closes"],
)
def test_connection_reused_for_consecutive_messages(tmp_path, mode, per_connection, connections):
    with stub([mode]) as srv:
        data = tmp_path / "data"
        data.mkdir()
        cfg = parse_config(
            f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {srv.port}\n'
            f"[delivery]\nmax_messages_per_connection = {per_connection}\n",
            data / "moxcli.toml",
        )
        with Store.open(data) as st:
            for i in range(5):
                q.enqueue(st, data, mail_from="a@moxcli.test", recipients=[f"r{i}@[127.0.0.1]"], data=BODY % i)
            seen = []
            assert deliver.run_queue(st, data, cfg, on_attempt=seen.append, keep_results=False) == []
            assert [(r.outcome, r.attempt) for r in seen] == [("delivered", 1)] * 5
            assert q.list_messages(st) == []
        assert srv.connections == connections
        assert [m.split(b"\r\n\r\n", 1)[1] for m in srv.messages] == [b"hello %d\r\n" % i for i in range(5)]
        # Every transaction on a kept connection starts with RSET; every connection ends with QUIT.
        verbs = srv.commands
        assert verbs.count(b"MAIL") == 5 and verbs.count(b"RSET") == 5 - connections
        if mode == NORMAL:
            assert verbs.count(b"QUIT") == connections


def test_cached_not_found_is_raised_as_a_new_exception_each_time(monkeypatch):
    """Raising one cached exception again and again grows its traceback (and keeps every
    frame alive): the per-run DNS cache made `queue run` grow by ~6 KB per message."""
    import traceback

    from moxcli.config import DNSConfig
    from moxcli.dns import NotFound, Resolver

    calls = []

    def query(self, name, rdtype):
        calls.append(name)
        raise NotFound(name, rdtype, True, False)

    monkeypatch.setattr(Resolver, "query", query)
    r = deliver.CachingResolver.from_config(DNSConfig(resolvers=(("127.0.0.1", 9),)))
    seen = []
    for _ in range(3):
        with pytest.raises(NotFound) as e:
            r.query("x.example", "MX")
        seen.append(e.value)
    assert calls == ["x.example"]
    assert len({id(x) for x in seen}) == 3 and all(x.nxdomain for x in seen)
    depths = [len(list(traceback.walk_tb(x.__traceback__))) for x in seen[1:]]
    assert depths[0] == depths[1]
