"""Prometheus text-format files for node_exporter's textfile collector.

A job run writes its figures to one file. The file is written to a temporary name in the same
directory, synced and renamed, so the collector never reads a half-written file. Every metric
is always present, and every declared label value has a sample (0 when nothing happened), so
dashboards and alerts see zeros rather than missing series.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Metric:
    """One metric family; ``label`` and ``values`` declare the label and its values up front."""

    name: str
    help: str
    type: str = "counter"
    label: str | None = None
    values: Iterable[str] = ()
    samples: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.samples = {v: 0.0 for v in self.values} if self.label else {"": 0.0}

    def inc(self, value: str = "", by: float = 1.0) -> None:
        """Add to the sample of a label value; values not declared are counted under "other"."""
        key = value if value in self.samples else ("other" if "other" in self.samples else value)
        self.samples[key] = self.samples.get(key, 0.0) + by

    def set(self, v: float, value: str = "") -> None:
        self.samples[value] = v

    def render(self) -> str:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.type}"]
        for value, n in self.samples.items():
            labels = f'{{{self.label}="{_escape(value)}"}}' if self.label else ""
            lines.append(f"{self.name}{labels} {_num(n)}")
        return "\n".join(lines) + "\n"


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else repr(float(n))


def render(metrics: Iterable[Metric]) -> str:
    return "".join(m.render() for m in metrics)


def write_textfile(path: Path, metrics: Iterable[Metric]) -> None:
    """Write the metrics atomically (temp file in the same directory, fsync, rename)."""
    path = Path(path)
    text = render(metrics).encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
