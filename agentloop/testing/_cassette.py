"""Record a test's HTTP exchanges with the model server once, then replay them offline.

While a `Cassette` is active, every model of the process sends through it (on aiohttp and on
httpx alike): recording, it passes each request to the real transport and writes down what came
back; replaying, it answers each request from the file and opens no connection. It sits under
the request building, retries and response parsing, so a replay runs all of them, and the
model's retries and what it learns from error answers happen again as they did.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, cast, get_args

import anyio

from .._errors import CassetteError, UsageError
from .._wire.transport import Here, set_tap
from ._cassette_format import FORMAT_VERSION, describe, diff, request_body, scrub_text, secrets_of
from ._cassette_transport import Entry, RecordingTransport, ReplayTransport

if TYPE_CHECKING:
    from .._wire.transport import Tap, Transports

__all__ = ["Cassette", "CassetteMode", "cassette"]

CassetteMode = Literal["once", "record", "replay"]
"""``once``: record when the file does not exist, else replay. ``record``: always record (the
file is written anew). ``replay``: never touch the network."""
_MODES: tuple[str, ...] = get_args(CassetteMode)


def cassette(
    path: str | os.PathLike[str], mode: CassetteMode = "once", *, allow_unused: bool = False
) -> Cassette:
    """A cassette at `path`, to use as a context manager around the code under test.

    ``with cassette("cassettes/weather.json"): result = agent.run_sync("...")``. Replaying, a
    request that matches no recorded one raises `CassetteError`, naming the request and what
    differs; so does leaving the block with recorded exchanges unused (unless `allow_unused`,
    or a request already found no match).
    A recording is written when the block ends without an exception. Keys and other secrets
    are taken out before anything is written.
    """
    return Cassette(path, mode, allow_unused=allow_unused)


class Cassette:
    """Recorded HTTP exchanges with the model server, and the mode that uses them.

    `recording` says, once entered, whether this block records or replays. `exchanges` holds
    the exchanges as the file keeps them (see `agentloop.testing` "Cassettes").
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        mode: CassetteMode = "once",
        *,
        allow_unused: bool = False,
    ) -> None:
        if mode not in _MODES:
            raise UsageError(f"a cassette's mode is 'once', 'record' or 'replay', not {mode!r}")
        self.path: Path = Path(path)
        self.mode: CassetteMode = mode
        self.allow_unused: bool = allow_unused
        self.recording: bool = False
        self.exchanges: list[dict[str, Any]] = []
        self._entries: list[Entry] = []
        self._used: list[bool] = []
        self._sent = 0
        self._mismatched = False
        self._replay: Here | None = None
        self._previous: Tap | None = None
        self._active = False

    def __repr__(self) -> str:
        return f"Cassette({str(self.path)!r}, mode={self.mode!r})"

    def __enter__(self) -> Self:
        if self._active:
            raise UsageError("this cassette is already in use")
        self.recording = self.mode == "record" or (self.mode == "once" and not self.path.exists())
        self.exchanges = [] if self.recording else _load(self.path)
        self._entries, self._used, self._sent = [], [False] * len(self.exchanges), 0
        self._mismatched = False
        self._replay = None
        previous = set_tap(self)
        if previous is not None:
            set_tap(previous)
            raise UsageError("another cassette is in use: cassettes do not nest")
        self._previous, self._active = previous, True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        set_tap(self._previous)
        self._active = False
        if exc_type is not None:
            return  # a failed recording is not kept: "once" records again next time
        if self.recording:
            self.exchanges = [entry.to_json() for entry in self._entries]
            self._write()
        elif not (self.allow_unused or self._mismatched or all(self._used)):
            self._unused()

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def here(self, transports: Transports) -> Here:
        """The transport a request uses while this cassette is active (the `Tap` protocol)."""
        if self.recording:
            real = transports.untapped()
            return Here(RecordingTransport(self, real.transport), real.limiter, real.clock)
        if self._replay is None:
            self._replay = Here(ReplayTransport(self), None, anyio.current_time)
        return self._replay

    def start(self, entry: Entry) -> None:
        """Recording: a request was sent (exchanges are kept in the order of their requests)."""
        self._entries.append(entry)

    def drop(self, entry: Entry) -> None:
        """Recording: a request was cancelled before its answer came."""
        if entry in self._entries:
            self._entries.remove(entry)

    def take(self, url: str, content: bytes, headers: Mapping[str, str]) -> Mapping[str, Any]:
        """Replaying: the first unused recorded exchange that matches the request (its method,
        URL path and JSON body); identical requests take their exchanges in recorded order."""
        self._sent += 1
        secrets = secrets_of(url, headers)
        body = request_body(content, secrets)
        what = describe("POST", url)
        for index, exchange in enumerate(self.exchanges):
            request = _request_of(exchange)
            if self._used[index] or request.get("method", "POST") != "POST":
                continue
            if (
                describe("POST", str(request.get("url", ""))) == what
                and request.get("body") == body
            ):
                self._used[index] = True
                return exchange
        self._mismatched = True  # said already: leaving the block does not say it again
        raise CassetteError(scrub_text(self._mismatch(what, body), secrets))

    def _mismatch(self, what: str, body: Any) -> str:
        head = f"cassette {self.path} has no answer for request {self._sent} ({what})"
        unused = [i for i, used in enumerate(self._used) if not used]
        if not unused:
            told = f"all {len(self.exchanges)} recorded exchanges were used already"
            return f"{head}: {told}. {_AGAIN}"
        index = unused[0]
        request = _request_of(self.exchanges[index])
        recorded = describe(str(request.get("method", "POST")), str(request.get("url", "")))
        if recorded != what:
            lines = [f"request: recorded {recorded}, sent {what}"]
        else:
            lines = diff(request.get("body"), body)
        shown = "\n".join(f"  {line}" for line in lines)
        nearest = f"the next unused recorded request (exchange {index + 1}) differs"
        return f"{head}; {nearest}:\n{shown}\n{_AGAIN}"

    def _unused(self) -> None:
        left = [i + 1 for i, used in enumerate(self._used) if not used]
        raise CassetteError(
            f"cassette {self.path}: {len(left)} recorded exchange(s) were not used "
            f"(exchanges {', '.join(map(str, left[:10]))}): the code under test sent fewer "
            f"requests than were recorded. {_AGAIN}"
        )

    def _write(self) -> None:
        secrets = {secret for entry in self._entries for secret in entry.secrets}
        document = {"agentloop_cassette": FORMAT_VERSION, "exchanges": self.exchanges}
        text = scrub_text(json.dumps(document, indent=2, ensure_ascii=False), secrets) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(self.path)


_AGAIN = 'To record it again: mode="record" (with pytest: --cassette-mode=record).'


def _request_of(exchange: Mapping[str, Any]) -> dict[str, Any]:
    request = exchange.get("request")
    return cast("dict[str, Any]", request) if isinstance(request, dict) else {}


def _load(path: Path) -> list[dict[str, Any]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CassetteError(
            f"cassette {path} does not exist: record it first (mode 'once' or 'record')"
        ) from None
    except (OSError, ValueError) as exc:
        raise CassetteError(f"cassette {path} cannot be read: {exc}") from exc
    if not isinstance(document, dict):
        raise CassetteError(f"cassette {path} is not an agentloop cassette")
    document = cast("dict[str, Any]", document)
    exchanges = document.get("exchanges")
    if document.get("agentloop_cassette") != FORMAT_VERSION or not isinstance(exchanges, list):
        raise CassetteError(f"cassette {path} is not an agentloop cassette (version 1)")
    return cast("list[dict[str, Any]]", exchanges)
