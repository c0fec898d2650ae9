"""The shared real-world samples (../shared/samples): an extra interoperability layer.

The suite does not need them: testdata/realworld/ has our own files with the same quirks.
Where the samples are checked out they are read as well; a test that needs one skips when
they are missing, except under CI=true, where a missing samples directory is a failure
(CI has them, so their absence there means a broken checkout, not an optional extra).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples"


def need_sample(path: Path) -> Path:
    """``path`` (under SAMPLES) if it exists; skip, or fail under CI=true, if it does not."""
    if path.exists():
        return path
    why = f"{path} not present (../shared/samples is not checked out here)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why}; CI must have the shared samples")
    pytest.skip(why)


def sample_files(*parts: str, pattern: str = "*") -> list[Path]:
    """The files in a samples folder, for parametrizing; [] when the samples are missing
    (then the test using them gets one skipped or, under CI=true, failing case)."""
    d = SAMPLES.joinpath(*parts)
    return sorted(p for p in d.glob(pattern) if p.is_file()) if d.is_dir() else []
