"""Key layouts are data (moxcli/store/schema.py): the parts a key is built from and split into."""

import pytest

from moxcli.store import schema as s


@pytest.mark.parametrize("table", [t for t in s.TABLES if all(p.kind != s.RAW for p in t.key)], ids=lambda t: t.name)
def test_keys_split_back_into_their_parts(table):
    parts = [7 + i if p.kind == s.U64 else f"part\u263a{i}" for i, p in enumerate(table.key)]
    assert s.split_key(s.text_key(*parts), table.int_parts) == parts


@pytest.mark.parametrize(
    "table,int_parts,is_index",
    [
        (s.MESSAGE, (1, 2), False),
        (s.MAILBOX, (1,), False),
        (s.QUEUE, (0,), False),
        (s.TLS_RESULT, (), False),
        (s.TLS_RESULT_BY_RCPT, (), True),
        (s.DMARC_REPORT_IN_BY_DOMAIN, (1,), True),
        (s.DMARC_REPORT_IN_BY_KEY, (), True),
        (s.MAILBOX_BY_NAME, (), True),
    ],
    ids=lambda v: getattr(v, "name", None),
)
def test_layouts(table, int_parts, is_index):
    assert table.int_parts == int_parts
    assert table.is_index is is_index
    assert ("->" in table.key_layout) is is_index


def test_every_table_named_once():
    assert len({t.name for t in s.TABLES}) == len(s.TABLES) == len(s.TABLES_BY_NAME)
