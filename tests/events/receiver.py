"""Real HTTP receivers on loopback for webhook tests and the benchmark (no mocks: the worker's
httpx talks TCP to them).

Receiver: a small HTTP/1.1 server (keep-alive, Content-Length bodies) on its own asyncio loop
in a thread of its own, so it answers while the test's loop waits for the worker. It records
every request (path, headers, body, arrival) and answers from a script of status codes, then
`default`; `delay` seconds before each answer. (http.server's thread per connection was too
slow: it fought the test for the GIL and answered in seconds under a few hundred requests.)
BlackHole: a listening socket that never accepts: connections hang until the client gives up.
"""
import asyncio
import socket
import threading
import time
from dataclasses import dataclass

REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 301: "Moved Permanently",
           400: "Bad Request", 404: "Not Found", 410: "Gone", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable"}


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int


class Receiver:
    def __init__(self, script: list[int] | None = None, default: int = 200, delay: float = 0.0,
                 keep: bool = True):
        self.script = list(script or [])
        self.default = default
        self.delay = delay
        self.keep = keep  # record requests (the benchmark only counts them)
        self.count = 0
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0
        self.url = ""

    # ------------------------------------------------------------------ lifecycle

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=4096, reuse_address=True))
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> "Receiver":
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        async def close():
            self._server.close()
            tasks = [t for t in asyncio.all_tasks(self._loop) if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    # ------------------------------------------------------------------ HTTP

    def next_status(self) -> int:
        with self._lock:
            return self.script.pop(0) if self.script else self.default

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                _method, path, _version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                status = self.next_status()
                with self._lock:
                    self.count += 1
                    if self.keep:
                        self.requests.append(Seen(path, headers, body, time.time(), status))
                if self.delay:
                    await asyncio.sleep(self.delay)
                payload = b'{"ok":true}' if 200 <= status < 300 else b'{"error":"scripted"}'
                writer.write(f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.CancelledError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    def by_id(self) -> dict[str, list[Seen]]:
        out: dict[str, list[Seen]] = {}
        with self._lock:
            seen = list(self.requests)
        for r in seen:
            out.setdefault(r.headers["webhook-id"], []).append(r)
        return out


class BlackHole:
    """Accepts TCP connections in the kernel's backlog and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4096)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"

    def stop(self) -> None:
        self.sock.close()
