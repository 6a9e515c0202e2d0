"""Load: signed slash commands through HTTP into a real `headroom serve`, against a bare-Bolt floor measured in the same run.

    python -m benchmarks.load [--commands 2000] [--mentions 0] [--concurrency 50] [--workers 1] [--warmup 100] [--rounds 3]

Each round runs the same load twice, against two servers started the same way (one uvicorn
process, the same Web API client settings, the same garbage-collector settings):

1. the floor: a bare async Bolt app whose listeners only acknowledge `/headroom` and mentions
   (Bolt's own signature check, nothing else);
2. headroom: `headroom serve` with a real Redis, answering every command at the fake Slack
   Web API that runs in this process and timestamps each answer.

It reports the acknowledgement latency of both (HTTP response to the signed request) and
headroom's ack p99 as a multiple of the floor's, plus headroom's end-to-end latency (request
sent -> answer posted), errors, requests answered once / never / twice, and the bot's RSS
(after the first half of the requests, at the end, and its peak). A warm-up burst (not
counted, with other questions than the measured ones) first opens the connections on both
sides; run with --warmup 0 to see a cold start. Every loop is bounded: it stops after the
requested count or a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlencode

import aiohttp
import uvicorn
from slack_sdk.signature import SignatureVerifier

from tests.integration.servers import FakeSlack, RedisProcess, free_port

SECRET = "load-test-secret"
QUESTIONS = [
    "llama 3.3 70b fp8 8k context", "llama 3.1 8b 16 users", "qwen2.5 72b bf16 32k 20 users",
    "qwen3 32b fp8 16k", "mixtral 8x7b int4 16 users", "deepseek r1 fp8 on p5en", "gpt-oss-120b 64k 50 concurrent",
    "gemma 3 27b 128k fp8 kv", "70B fp8 8k under $20/h", "phi-4 4k", "mistral small 3.1 bf16 32k",
    "qwen3 30b a3b fp8 64 users", "llama 3.1 405b fp8 8k", "kimi k2 fp8 32k", "granite 3.3 8b 8k 32 users",
    "llama 3.3 70b int4 32k only g6e", "qwen2.5 7b fp8 kv 128k", "codellama 34b 16k", "gemma 2 9b 8k", "8b fp16 4k",
]  # fmt: skip
# warm-up questions are not among the measured ones: the measured run still answers each of its
# questions for the first time (plan, render, cache); only connections and code paths are warm
WARMUP_QUESTIONS = ["qwen2.5 3b 4k", "llama 3.2 1b 8k", "gemma 2 2b 4k", "phi-2 2k", "qwen3 0.6b 8k"]


# --- the floor: a bare async Bolt app that verifies and acknowledges ------------------------------


def bare_bolt_app():  # noqa: ANN201 - a Starlette app
    """The least any Bolt app does per slash command: verify the signature, route, acknowledge."""
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
    from slack_bolt.async_app import AsyncApp
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from bot.metrics import Metrics
    from bot.settings import Settings
    from bot.slack_web import build_web_client

    settings = Settings()
    app = AsyncApp(
        client=build_web_client(settings, Metrics()),
        signing_secret=settings.secret("slack_signing_secret"),
        process_before_response=True,
    )

    @app.command("/headroom")
    async def acknowledge(ack) -> None:  # noqa: ANN001
        await ack()

    @app.event("app_mention")
    async def acknowledged(body) -> None:  # noqa: ANN001 - Bolt acknowledges events itself
        return None

    handler = AsyncSlackRequestHandler(app)

    async def events(request):  # noqa: ANN001, ANN202
        return await handler.handle(request)

    async def readyz(_):  # noqa: ANN001, ANN202
        return JSONResponse({"status": "ready"})

    @asynccontextmanager
    async def lifespan(_):  # noqa: ANN001, ANN202 - the same collector settings as headroom's
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        yield

    return Starlette(routes=[Route("/slack/events", events, methods=["POST"]), Route("/readyz", readyz)],
                     lifespan=lifespan)  # fmt: skip


def serve_bare(port: int) -> None:
    from bot.logs import configure_logging
    from bot.settings import Settings

    configure_logging(Settings().log_level)
    uvicorn.run(bare_bolt_app(), host="127.0.0.1", port=port, log_config=None, timeout_graceful_shutdown=30)


# --- measuring -----------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """The server process and its worker processes."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def rss_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of the server's processes together, KiB, from /proc."""
    rss = peak = 0
    for member in process_tree(pid):
        fields = {}
        with open(f"/proc/{member}/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        rss += int(fields["VmRSS"].split()[0])
        peak += int(fields["VmHWM"].split()[0])
    return rss, peak


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the server's processes, from /proc."""
    total = 0
    for member in process_tree(pid):
        with open(f"/proc/{member}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def signed_headers(body: str, content_type: str) -> dict[str, str]:
    ts = str(int(time.time()))
    return {
        "content-type": content_type,
        "x-slack-request-timestamp": ts,
        "x-slack-signature": SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body),
    }


def command_body(i: int, channel: str, hook: str, run: str) -> str:
    return urlencode({
        "team_id": "T1", "channel_id": channel, "user_id": f"U{i % 97}", "command": "/headroom",
        "text": QUESTIONS[i % len(QUESTIONS)], "response_url": hook, "trigger_id": f"{run}.{i}",
    })  # fmt: skip


def mention_body(i: int, channel: str) -> str:
    event = {"type": "app_mention", "user": f"U{i % 97}", "text": f"<@UHEADROOM> {QUESTIONS[i % len(QUESTIONS)]}",
             "ts": f"{time.time():.6f}", "channel": channel}  # fmt: skip
    return json.dumps({"team_id": "T1", "api_app_id": "A1", "type": "event_callback",
                       "event_id": f"Ev{uuid.uuid4().hex}", "event_time": int(time.time()), "event": event})  # fmt: skip


@dataclass
class Result:
    name: str
    requests: int
    elapsed_s: float = 0.0  # the acknowledgements: first request sent -> last response read
    answered_s: float = 0.0  # the answers: first request sent -> last answer posted
    answered_while_acking: int = 0  # answers posted before the last acknowledgement
    ack: list[float] = field(default_factory=list)
    e2e: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    answered_once: int = 0
    unanswered: int = 0
    duplicates: int = 0
    cpu_ms_per_request: float = 0.0
    rss_half_kib: int = 0
    rss_end_kib: int = 0
    rss_peak_kib: int = 0

    @property
    def rss_growth(self) -> float:
        return self.rss_end_kib / self.rss_half_kib - 1 if self.rss_half_kib else float("nan")


async def measure(name: str, argv: list[str], env: dict[str, str], fake: FakeSlack, slack_port: int,
                  args: argparse.Namespace, answers: bool) -> Result:  # fmt: skip
    """Start one server, warm it up, send the measured load, wait for its answers, stop it."""
    port = free_port()
    log = tempfile.TemporaryFile()  # the server's own log: shown only if it never becomes ready
    server = subprocess.Popen([*argv, "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=log)
    run_id = uuid.uuid4().hex[:8]
    total = args.commands + args.mentions
    result = Result(name, total)
    sent_at: dict[str, float] = {}
    rss_half: list[int] = []
    done, acked_at = 0, 0.0
    try:
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", connector=connector, timeout=timeout) as client:
            try:
                await _ready(client, server)
            except RuntimeError:
                log.seek(0)
                print(log.read().decode(errors="replace")[-3000:], file=sys.stderr)
                raise
            if args.warmup:  # open connections and fill caches on both sides; not counted below
                await asyncio.gather(*(_warm(client, i, slack_port, run_id) for i in range(args.warmup)))
                deadline = time.monotonic() + 30
                while answers and time.monotonic() < deadline and len(fake.of("chat.postMessage")) < args.warmup:
                    await asyncio.sleep(0.05)
            with fake.lock:
                fake.calls.clear()
            cpu_start = cpu_seconds(server.pid)
            bodies = {}  # built before the clock starts; only the signature (timestamp) is made per request
            for i in range(total):
                channel = f"CL{run_id}{i:06d}"
                if i < args.commands:
                    hook = f"http://127.0.0.1:{slack_port}/webhook/{run_id}-{i}"
                    bodies[i] = (channel, command_body(i, channel, hook, run_id), "application/x-www-form-urlencoded")
                else:
                    bodies[i] = (channel, mention_body(i, channel), "application/json")
            queue: asyncio.Queue[int] = asyncio.Queue()
            for i in range(total):
                queue.put_nowait(i)
            gc.disable()  # the driver's own pauses would show up as the server's latency
            started = time.perf_counter()

            async def worker() -> None:
                nonlocal done
                while not queue.empty():
                    i = queue.get_nowait()
                    channel, body, content_type = bodies[i]
                    headers = signed_headers(body, content_type)
                    t0 = time.perf_counter()
                    sent_at[channel] = time.monotonic()
                    try:
                        async with client.post("/slack/events", data=body.encode(), headers=headers) as response:
                            await response.read()
                            if response.status != 200:
                                result.errors.append(f"{channel}: HTTP {response.status}")
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        result.errors.append(f"{channel}: {type(exc).__name__}")
                    result.ack.append((time.perf_counter() - t0) * 1000)
                    done += 1
                    if done == total // 2:  # read /proc off the event loop: it must not stall the driver
                        rss_half.append((await asyncio.to_thread(rss_kib, server.pid))[0])

            await asyncio.gather(*(worker() for _ in range(args.concurrency)))
            result.elapsed_s = time.perf_counter() - started
            acked_at = time.monotonic()
            gc.enable()
            deadline = time.monotonic() + 60
            while answers and time.monotonic() < deadline and len(_answered(fake)) < total:
                await asyncio.sleep(0.05)
            result.answered_s = time.perf_counter() - started
            if answers:
                await asyncio.sleep(0.5)  # a second answer to the same request would arrive by now
            result.cpu_ms_per_request = (cpu_seconds(server.pid) - cpu_start) * 1000 / total
    finally:
        if server.poll() is None:
            result.rss_end_kib, result.rss_peak_kib = rss_kib(server.pid)
        server.terminate()
        server.wait(timeout=60)
        log.close()
    result.rss_half_kib = rss_half[0] if rss_half else 0
    if answers:
        answered, counts = _answered(fake), _answer_counts(fake)
        result.e2e = [(answered[c] - sent_at[c]) * 1000 for c in sent_at if c in answered]
        result.answered_while_acking = sum(1 for c in sent_at if c in answered and answered[c] <= acked_at)
        missing = [c for c in sent_at if c not in answered]
        result.unanswered = len(missing)
        result.answered_once = sum(1 for c in sent_at if counts.get(c) == 1)
        result.duplicates = sum(n - 1 for n in counts.values() if n > 1)
        result.errors += [f"{c}: no answer" for c in missing]
        result.errors += [f"slack refused blocks: {e}" for e in fake.block_errors[:3]]
    return result


async def _ready(client: aiohttp.ClientSession, server: subprocess.Popen) -> None:
    for _ in range(600):
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode}")
        try:
            async with client.get("/readyz") as ready:
                if ready.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the server did not become ready within 60 s")


async def _warm(client: aiohttp.ClientSession, i: int, slack_port: int, run_id: str) -> None:
    body = urlencode({
        "team_id": "T1", "channel_id": f"CW{run_id}{i:06d}", "user_id": f"UW{i % 7}", "command": "/headroom",
        "text": WARMUP_QUESTIONS[i % len(WARMUP_QUESTIONS)], "response_url": f"http://127.0.0.1:{slack_port}/webhook/w{i}",
        "trigger_id": f"{run_id}.w{i}",
    })  # fmt: skip
    async with client.post(
        "/slack/events", data=body.encode(), headers=signed_headers(body, "application/x-www-form-urlencoded")
    ) as r:
        await r.read()


def _answer_counts(fake: FakeSlack) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call in fake.of("chat.postMessage"):
        counts[call.payload.get("channel")] = counts.get(call.payload.get("channel"), 0) + 1
    return counts


def _answered(fake: FakeSlack) -> dict[str, float]:
    first: dict[str, float] = {}
    for call in fake.of("chat.postMessage"):
        first.setdefault(call.payload.get("channel"), call.at)
    return first


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


async def run(args: argparse.Namespace) -> list[tuple[Result, Result]]:
    redis = RedisProcess()
    redis.start()
    fake = FakeSlack(validate=False)  # the integration tests validate every payload; here we only time
    slack_port = free_port()
    slack_server = uvicorn.Server(uvicorn.Config(fake.app(), host="127.0.0.1", port=slack_port, log_level="error"))
    slack_task = asyncio.create_task(slack_server.serve())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REDIS_"))}
    env |= {"SLACK_BOT_TOKEN": "xoxb-load", "SLACK_SIGNING_SECRET": SECRET, "REDIS_URL": redis.url,
            "SLACK_API_URL": f"http://127.0.0.1:{slack_port}/api/", "RATE_LIMIT_PER_MINUTE": "1000000",
            "LOG_LEVEL": "WARNING"}  # fmt: skip
    floor_argv = [sys.executable, "-m", "benchmarks.load", "--serve-bare"]
    bot_argv = [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--workers", str(args.workers)]
    rounds = []
    try:
        for _ in range(args.rounds):
            floor = await measure("bare Bolt", floor_argv, env, fake, slack_port, args, answers=False)
            bot = await measure("headroom", bot_argv, env, fake, slack_port, args, answers=True)
            rounds.append((floor, bot))
    finally:
        slack_server.should_exit = True
        await slack_task
        redis.close()
    return rounds


def report(args: argparse.Namespace, floor: Result, bot: Result) -> None:
    print(f"{bot.requests} requests ({args.commands} slash commands, {args.mentions} mentions) after {args.warmup} "
          f"warm-up requests, {args.workers} bot worker(s), concurrency {args.concurrency}")  # fmt: skip
    for r in (floor, bot):
        print(f"{r.name:<10} ack  p50 {statistics.median(r.ack):6.1f} ms   p99 {percentile(r.ack, 0.99):6.1f} ms   "
              f"max {max(r.ack):6.1f} ms   {r.requests / r.elapsed_s:5.0f} req/s acknowledged   "
              f"server CPU {r.cpu_ms_per_request:.2f} ms/request   errors {len(r.errors)}")  # fmt: skip
    print(f"headroom ack p99 = {ratio(floor, bot):.2f} x the bare-Bolt floor")
    if bot.e2e:
        print(f"headroom end to end  p50 {statistics.median(bot.e2e):6.1f} ms   p99 {percentile(bot.e2e, 0.99):6.1f} ms   "
              f"max {max(bot.e2e):6.1f} ms   (all answered {bot.answered_s:.1f} s after the first request; "
              f"{bot.answered_while_acking} answers went out while requests were still arriving)")  # fmt: skip
    print(f"headroom answered once {bot.answered_once} of {bot.requests}, never {bot.unanswered}, "
          f"twice {bot.duplicates}; errors {len(bot.errors)}")  # fmt: skip
    for error in (floor.errors + bot.errors)[:8]:
        print(f"  {error}")
    print(f"headroom RSS: {bot.rss_half_kib / 1024:.1f} MiB after the first half, {bot.rss_end_kib / 1024:.1f} MiB "
          f"at the end ({bot.rss_growth:+.1%}), peak {bot.rss_peak_kib / 1024:.1f} MiB")  # fmt: skip


def ratio(floor: Result, bot: Result) -> float:
    return percentile(bot.ack, 0.99) / percentile(floor.ack, 0.99)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--commands", type=int, default=2000)
    parser.add_argument("--mentions", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1, help="bot worker processes")
    parser.add_argument("--warmup", type=int, default=100, help="requests sent first and not counted (0: none)")
    parser.add_argument("--rounds", type=int, default=3, help="floor + headroom pairs, one after the other")
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)  # the floor's own process
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.port)
        return
    rounds = asyncio.run(run(args))
    for i, (floor, bot) in enumerate(rounds):
        if args.rounds > 1:
            print(f"--- round {i + 1}")
        report(args, floor, bot)
    if args.rounds > 1:
        ratios = sorted(ratio(floor, bot) for floor, bot in rounds)
        print(f"--- ack p99 ratio over {args.rounds} rounds: median {statistics.median(ratios):.2f}, "
              f"range {ratios[0]:.2f} - {ratios[-1]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
