"""A stand-in for a local model server, run by path: ``python fake_llama_server.py --port P
[...server options] --fake MODE``.

It takes the options `LocalServer` passes (only ``--port`` is read) and behaves as MODE says:

- ``serve``: answers ``/health``, ``/v1/models``, ``/props`` (``supports_tools`` false) and chat
  completions ("hello").
- ``segfault-on-start``: prints two lines, then dies of SIGSEGV before it listens.
- ``exit-3``: prints a usage error and exits with code 3.
- ``silent``: never listens (for the startup timeout).
- ``segfault-on-request``: serves, and dies of SIGSEGV on its first chat request.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


def option(name: str, default: str = "") -> str:
    args = sys.argv[1:]
    return args[args.index(name) + 1] if name in args else default


MODE = option("--fake", "serve")
COMPLETION = {
    "id": "c1",
    "object": "chat.completion",
    "created": 1,
    "model": "tiny",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}


def die(number: int) -> None:
    sys.stdout.flush()
    signal.signal(number, signal.SIG_DFL)
    os.kill(os.getpid(), number)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        print(format % args, flush=True)

    def send(self, body: object, status: int = 200) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        if self.path == "/props":
            self.send({"chat_template_caps": {"supports_tools": False}})
        elif self.path in ("/health", "/v1/models"):
            self.send({"status": "ok", "data": [{"id": "tiny"}]})
        else:
            self.send({"error": "not found"}, 404)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        self.rfile.read(length)
        if MODE == "segfault-on-request":
            print("llama_decode: GGML_ASSERT(ok) failed", flush=True)
            die(signal.SIGSEGV)
        self.send(COMPLETION)


def main() -> None:
    threads = option("--threads", option("--n_threads"))
    print(f"fake server: pid {os.getpid()}, mode {MODE}, threads {threads}", flush=True)
    if MODE == "segfault-on-start":
        print("load_tensors: loading model\nggml_cpu: illegal instruction ahead", flush=True)
        die(signal.SIGSEGV)
    if MODE == "exit-3":
        print("error: invalid argument: --bogus", flush=True)
        sys.exit(3)
    if MODE == "silent":
        time.sleep(60)
        return
    server = HTTPServer(("127.0.0.1", int(option("--port"))), Handler)
    print("server is listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
