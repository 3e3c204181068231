"""Batch inputs: folders and JSONL files read into keyed items."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentloop import UsageError
from agentloop.batch import read_folder, read_jsonl


def test_read_folder_is_sorted_and_keyed_by_relative_path(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_text("B")
    (tmp_path / "a.txt").write_text("A")
    (tmp_path / "sub" / "c.txt").write_text("C")
    (tmp_path / "skip.md").write_text("no")
    found = list(read_folder(tmp_path, "**/*.txt"))
    assert found == [
        {"id": "a.txt", "text": "A"},
        {"id": "b.txt", "text": "B"},
        {"id": "sub/c.txt", "text": "C"},
    ]
    with pytest.raises(UsageError, match="not a folder"):
        list(read_folder(tmp_path / "missing"))


def test_read_jsonl_keys_records_and_rejects_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": 7, "text": "a"}\n\n"just text"\n{"text": "b"}\n')
    assert list(read_jsonl(path)) == [
        {"id": 7, "text": "a"},
        {"text": "just text", "id": "line-3"},
        {"text": "b", "id": "line-4"},
    ]
    path.write_text('{"id": 1}\nnot json\n')
    with pytest.raises(UsageError, match=":2: not JSON"):
        list(read_jsonl(path))
