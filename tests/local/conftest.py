"""Fixtures of the local-server tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF")
    return path
