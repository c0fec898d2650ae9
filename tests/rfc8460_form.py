"""The RFC 8460 form of mox's report JSON, for comparing with mox-derived vectors.

mox writes "" for every failure-details field it does not know (docs/behaviour-notes.md §1.3); moxcli leaves such
fields out, as RFC 8460 §4.4 types them (IP address, host name, URI) and its Appendix B
example does. ``rfc8460_form`` removes the empty strings from every failure-details object.
"""

from __future__ import annotations

from typing import Any


def rfc8460_form(obj: Any) -> Any:
    """A deep copy of ``obj`` with the "" values of failure-details objects removed."""
    if isinstance(obj, list):
        return [rfc8460_form(v) for v in obj]
    if isinstance(obj, dict):
        is_detail = "result-type" in obj
        return {k: rfc8460_form(v) for k, v in obj.items() if not (is_detail and v == "")}
    return obj
