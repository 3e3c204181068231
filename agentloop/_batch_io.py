"""Where batch inputs come from and where results go: JSONL sinks with resume, folder readers."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol, Self

from ._errors import UsageError

__all__ = ["Folder", "JSONLSink", "NullSink", "Sink", "read_folder", "read_jsonl"]


class Sink(Protocol):
    """Where a batch writes its records. Writes happen one at a time, on the event loop thread.

    - `done_keys()`: keys already finished, skipped on resume (called once, before the batch).
    - `write_result(record)` / `write_failure(record)`: one JSON-serializable dict each.
    - `close()`: flush and release; called once at the end, also when the batch fails.
    """

    def done_keys(self) -> set[str]: ...
    def write_result(self, record: dict[str, Any]) -> None: ...
    def write_failure(self, record: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class JSONLSink:
    """Results to a JSONL file, failures to a second one (``<name>.failures.jsonl`` by default).

    Each record is written and flushed as one line, so a crash loses at most the items in flight;
    a line torn by a crash is cut off when the file is opened again. On resume the keys of the
    results file are skipped; failed items are tried again (the failures file is a log).
    `fsync=True` also forces each line to disk, for machines that may lose power.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        failures: str | os.PathLike[str] | None = None,
        *,
        fsync: bool = False,
    ) -> None:
        self.path: Path = Path(path)
        default = self.path.with_name(self.path.stem + ".failures.jsonl")
        self.failures_path: Path = Path(failures) if failures is not None else default
        if self.path == self.failures_path:
            raise UsageError("results and failures need two different files")
        self.fsync = fsync
        self._files: dict[Path, IO[str]] = {}

    def __repr__(self) -> str:
        return f"JSONLSink({str(self.path)!r}, failures={str(self.failures_path)!r})"

    def done_keys(self) -> set[str]:
        keys: set[str] = set()
        for record in _records(self.path):
            key = record.get("key")
            if isinstance(key, str):
                keys.add(key)
        return keys

    def write_result(self, record: dict[str, Any]) -> None:
        self._write(self.path, record)

    def write_failure(self, record: dict[str, Any]) -> None:
        self._write(self.failures_path, record)

    def close(self) -> None:
        files, self._files = self._files, {}
        for file in files.values():
            file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, path: Path, record: dict[str, Any]) -> None:
        file = self._files.get(path)
        if file is None:
            file = self._files[path] = _open_for_append(path)
        file.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        file.flush()
        if self.fsync:
            os.fsync(file.fileno())


class NullSink:
    """Keeps nothing: the batch's summary is all that remains."""

    def done_keys(self) -> set[str]:
        return set()

    def write_result(self, record: dict[str, Any]) -> None:
        pass

    def write_failure(self, record: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


def _open_for_append(path: Path) -> IO[str]:
    """Open for appending, first cutting a torn last line (one without its newline) off."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.stat().st_size:
        with path.open("rb+") as raw:
            raw.seek(-1, os.SEEK_END)
            if raw.read(1) != b"\n":
                raw.seek(0)
                data = raw.read()
                raw.truncate(data.rfind(b"\n") + 1)
    return path.open("a", encoding="utf-8")


def _records(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8", errors="replace") as file:
        for line in file:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash: its item runs again
            if isinstance(record, dict):
                yield record  # pyright: ignore[reportUnknownArgumentType]


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Records of a JSONL file, one at a time. Blank lines are skipped; a bad line is an error.

    A record's ``id`` (if any) is its key in a batch, else its line number.
    """
    with Path(path).open(encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise UsageError(f"{path}:{number}: not JSON ({exc})") from None
            if not isinstance(record, dict):
                record = {"text": record}
            found: dict[str, Any] = record  # pyright: ignore[reportUnknownVariableType]
            found.setdefault("id", f"line-{number}")
            yield found


def read_folder(
    folder: str | os.PathLike[str], pattern: str = "*", *, encoding: str = "utf-8"
) -> Folder:
    """``{"id": relative path, "text": content}`` for each file matching `pattern`, sorted.

    `pattern` is a glob (``"**/*.txt"`` recurses). The listing is made at once (sorted, so that
    keys are stable across runs, and counted, so that progress shows a total); each file is read
    only when the batch asks for it.
    """
    root = Path(folder)
    if not root.is_dir():
        raise UsageError(f"not a folder: {str(root)!r}")
    return Folder(root, sorted(p for p in root.glob(pattern) if p.is_file()), encoding)


class Folder:
    """The documents of a folder: iterable (lazily read) and sized."""

    def __init__(self, root: Path, paths: list[Path], encoding: str) -> None:
        self.root: Path = root
        self.paths: list[Path] = paths
        self.encoding: str = encoding

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for path in self.paths:
            yield {
                "id": path.relative_to(self.root).as_posix(),
                "text": path.read_text(self.encoding, errors="replace"),
            }
