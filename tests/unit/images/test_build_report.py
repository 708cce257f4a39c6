"""images/build.py's report: a root two images share is reported as it was first found."""

from __future__ import annotations

import pytest

from images import build
from images.build import Builder, Built

pytestmark = pytest.mark.unit


def test_a_shared_root_keeps_the_row_of_its_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "image_label", lambda ref: "")  # present: would read "cached"
    monkeypatch.setattr(build, "image_size_mb", lambda ref: 133.3)
    b = Builder(log=lambda msg: None)
    ref = b.root("tools")
    b.results["root-tools"] = Built(ref, True, 61.0, 133.3)  # as the first call built it
    assert b.root("tools") == ref  # the toxiproxy image asks for the same root again
    assert b.results["root-tools"] == Built(ref, True, 61.0, 133.3)
