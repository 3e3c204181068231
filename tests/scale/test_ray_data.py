"""Ray Data: 2,000 documents through an actor pool against the fake server, none lost or doubled."""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed")

from agentloop.ray_data import map_agent  # noqa: E402

from .agents import extraction_agent, prompt_of, traced_extraction_agent  # noqa: E402

_TESTS = Path(__file__).resolve().parents[1]
_TOOLS = _TESTS.parent / "tools"
sys.path.insert(0, str(_TOOLS))

from fakechat import FakeChatProcess  # noqa: E402


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """A local Ray on 2 CPUs, on loopback, without usage reports; workers import tests/."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(_TESTS), path) if p)
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield ray
    finally:
        ray.shutdown()
        os.environ["PYTHONPATH"] = path


def _documents(folder: Path, count: int) -> Path:
    path = folder / "docs.jsonl"
    with path.open("w") as out:
        for index in range(count):
            words = " ".join(["word"] * (index % 17 + 1))
            out.write(json.dumps({"id": f"d{index}", "text": words}) + "\n")
    return path


def test_two_thousand_documents_none_lost_or_doubled(local_ray: Any, tmp_path: Path) -> None:
    docs = _documents(tmp_path, 2000)
    with FakeChatProcess(latency=0.01) as server:
        ds = local_ray.data.read_json(str(docs))
        factory = partial(extraction_agent, server.base_url)
        out = map_agent(ds, factory, prompt=prompt_of, actors=2, concurrency=64)
        out.write_parquet(str(tmp_path / "out"))
    table = importlib.import_module("pyarrow.parquet").read_table(str(tmp_path / "out"))
    rows = table.to_pylist()
    assert len(rows) == 2000
    assert sorted(r["id"] for r in rows) == sorted(f"d{i}" for i in range(2000))
    assert [r for r in rows if r["error"] is not None] == []
    for row in rows:
        output = json.loads(row["output"])
        index = int(row["id"][1:])
        assert output == {"id": row["id"], "words": index % 17 + 1}
        assert row["requests"] == 1


def test_failures_are_rows_and_trio_actors_work(local_ray: Any, tmp_path: Path) -> None:
    """A server that is not there: every row comes back with its error, on a trio actor."""
    from faultserver import refused_url

    items = [{"id": f"x{i}", "text": "a b"} for i in range(5)]
    ds = local_ray.data.from_items(items)
    factory = partial(extraction_agent, refused_url())
    out = map_agent(ds, factory, prompt=prompt_of, retries=0, backend="trio").take_all()
    assert sorted(r["id"] for r in out) == [f"x{i}" for i in range(5)]
    assert {r["error_type"] for r in out} == {"APIConnectionError"}
    assert all(r["output"] is None for r in out)


def test_without_ray_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentloop import UsageError
    from agentloop.ray_data import require_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(UsageError, match=r"agentloop\[ray\]"):
        require_ray()


def test_runs_on_ray_actors_send_the_same_spans(local_ray: Any, tmp_path: Path) -> None:
    """Each actor instruments itself (in the agent factory); every row's run arrives as an
    invoke_agent span over its chat span, over OTLP/HTTP, at a receiver in this process."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from test_otel_export import Receiver

    receiver = Receiver()
    receiver.thread.start()
    try:
        docs = _documents(tmp_path, 40)
        with FakeChatProcess(latency=0.01) as server:
            ds = local_ray.data.read_json(str(docs))
            factory = partial(traced_extraction_agent, server.base_url, receiver.url("/v1/traces"))
            out = map_agent(ds, factory, prompt=prompt_of, actors=2, concurrency=8)
            rows = out.take_all()
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    assert len(rows) == 40 and all(row["error"] is None for row in rows)
    spans = [
        span
        for body in receiver.bodies["/v1/traces"]
        for resource in ExportTraceServiceRequest.FromString(body).resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    runs = {span.span_id: span for span in spans if span.name == "invoke_agent agent"}
    chats = [span for span in spans if span.name == "chat fake-model"]
    assert len(runs) == 40 and len(chats) == 40
    assert {chat.parent_span_id for chat in chats} == set(runs)
