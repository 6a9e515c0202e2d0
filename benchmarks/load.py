"""Load: signed slash commands (and mentions) through HTTP into a real `headroom serve`, with a real Redis.

    python -m benchmarks.load [--commands 2000] [--mentions 0] [--concurrency 50] [--workers 2] [--warmup 100]

The bot runs as its own process (as in production); the fake Slack Web API runs in this
process and timestamps each answer it receives. Reports acknowledgement latency (HTTP
response to the signed request), end-to-end latency (request sent -> answer posted at the
fake Slack), errors, and the bot's RSS (after the first half of the requests, at the end,
and its peak). A warm-up burst (not counted, with other questions than the measured ones)
first opens the connections on both sides; run with --warmup 0 to see a cold start. Every loop is bounded: it stops after the
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
import time
import uuid
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


def process_tree(pid: int) -> list[int]:
    """The bot process and its worker processes."""
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


# warm-up questions are not among the measured ones: the measured run still answers each of its
# questions for the first time (plan, render, cache); only connections and code paths are warm
WARMUP_QUESTIONS = ["qwen2.5 3b 4k", "llama 3.2 1b 8k", "gemma 2 2b 4k", "phi-2 2k", "qwen3 0.6b 8k"]


def rss_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of the bot's processes together, KiB, from /proc."""
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
    """User + system CPU time of the bot's processes, from /proc."""
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


def command_body(i: int, channel: str, hook: str) -> str:
    return urlencode({
        "team_id": "T1", "channel_id": channel, "user_id": f"U{i % 97}", "command": "/headroom",
        "text": QUESTIONS[i % len(QUESTIONS)], "response_url": hook, "trigger_id": f"{i}.1",
    })  # fmt: skip


def mention_body(i: int, channel: str) -> str:
    event = {"type": "app_mention", "user": f"U{i % 97}", "text": f"<@UHEADROOM> {QUESTIONS[i % len(QUESTIONS)]}",
             "ts": f"{time.time():.6f}", "channel": channel}  # fmt: skip
    return json.dumps({"team_id": "T1", "api_app_id": "A1", "type": "event_callback",
                       "event_id": f"Ev{uuid.uuid4().hex}", "event_time": int(time.time()), "event": event})  # fmt: skip


async def run(args: argparse.Namespace) -> dict:
    redis = RedisProcess()
    redis.start()
    fake = FakeSlack(validate=False)  # the integration tests validate every payload; here we only time
    slack_port, bot_port = free_port(), free_port()
    slack_server = uvicorn.Server(uvicorn.Config(fake.app(), host="127.0.0.1", port=slack_port, log_level="error"))
    slack_task = asyncio.create_task(slack_server.serve())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REDIS_"))}
    env |= {"SLACK_BOT_TOKEN": "xoxb-load", "SLACK_SIGNING_SECRET": SECRET, "REDIS_URL": redis.url,
            "SLACK_API_URL": f"http://127.0.0.1:{slack_port}/api/", "RATE_LIMIT_PER_MINUTE": "1000000",
            "LOG_LEVEL": "WARNING"}  # fmt: skip
    bot = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(bot_port), "--workers", str(args.workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{bot_port}"
    if os.environ.get("HEADROOM_LOAD_PROFILE"):
        subprocess.Popen(
            [
                "py-spy",
                "record",
                "-o",
                os.environ["HEADROOM_LOAD_PROFILE"],
                "-f",
                "raw",
                "-p",
                str(bot.pid),
                "-d",
                "4",
                "-r",
                "400",
                "--subprocesses",
            ]
        )
    total = args.commands + args.mentions
    sent_at: dict[str, float] = {}
    acks: list[float] = []
    errors: list[str] = []
    rss_half: list[int] = []
    done = 0
    try:
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(base, connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as client:
            for _ in range(300):
                try:
                    async with client.get("/readyz") as ready:
                        if ready.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            if args.warmup:  # open connections and fill caches on both sides; not counted below
                await asyncio.gather(*(_warm(client, i, slack_port) for i in range(args.warmup)))
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and len(fake.of("chat.postMessage")) < args.warmup:
                    await asyncio.sleep(0.05)
                with fake.lock:
                    fake.calls.clear()
            if os.environ.get("HEADROOM_LOAD_PROFILE"):  # developer aid: sample the bot during the measured run
                subprocess.Popen(["py-spy", "record", "-o", os.environ["HEADROOM_LOAD_PROFILE"], "-f", "raw",
                                  "-p", str(bot.pid), "-d", "3", "-r", "500", "--subprocesses"])  # fmt: skip
                await asyncio.sleep(1.0)
            cpu_start, own_start = cpu_seconds(bot.pid), time.process_time()
            gc.disable()  # the driver's own pauses would show up as the bot's latency
            queue: asyncio.Queue[int] = asyncio.Queue()
            bodies = {}  # built before the clock starts; only the signature (timestamp) is made per request
            for i in range(total):
                queue.put_nowait(i)
                channel = f"CL{i:06d}"
                if i < args.commands:
                    bodies[i] = (channel, command_body(i, channel, f"http://127.0.0.1:{slack_port}/webhook/{i}"),
                                 "application/x-www-form-urlencoded")  # fmt: skip
                else:
                    bodies[i] = (channel, mention_body(i, channel), "application/json")
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
                                errors.append(f"{channel}: HTTP {response.status}")
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        errors.append(f"{channel}: {type(exc).__name__}")
                    acks.append((time.perf_counter() - t0) * 1000)
                    done += 1
                    if done == total // 2:  # read /proc off the event loop: it must not stall the driver
                        rss_half.append((await asyncio.to_thread(rss_kib, bot.pid))[0])

            await asyncio.gather(*(worker() for _ in range(args.concurrency)))
            gc.enable()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(_answered(fake)) < total:
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
            cpu_used, own_used = cpu_seconds(bot.pid) - cpu_start, time.process_time() - own_start
    finally:
        rss_end, rss_peak = rss_kib(bot.pid) if bot.poll() is None else (0, 0)
        bot.terminate()
        bot.wait(timeout=30)
        slack_server.should_exit = True
        await slack_task
        redis.close()
    answered = _answered(fake)
    e2e = [(answered[c] - sent_at[c]) * 1000 for c in sent_at if c in answered]
    missing = [c for c in sent_at if c not in answered]
    errors += [f"{c}: no answer" for c in missing[:5]] + ([f"... {len(missing) - 5} more"] if len(missing) > 5 else [])
    errors += [f"slack refused blocks: {e}" for e in fake.block_errors[:3]]
    duplicates = sum(n - 1 for n in _answer_counts(fake).values() if n > 1)
    return {
        "requests": total, "commands": args.commands, "mentions": args.mentions, "concurrency": args.concurrency,
        "elapsed_s": elapsed, "ack": acks, "e2e": e2e, "errors": errors, "duplicates": duplicates,
        "bot_cpu_ms_per_request": cpu_used * 1000 / total,
        "driver_cpu_ms_per_request": own_used * 1000 / total,
        "rss_half_kib": rss_half[0] if rss_half else 0, "rss_end_kib": rss_end, "rss_peak_kib": rss_peak,
    }  # fmt: skip


async def _warm(client: aiohttp.ClientSession, i: int, slack_port: int) -> None:
    body = urlencode({
        "team_id": "T1", "channel_id": f"CW{i:06d}", "user_id": f"UW{i % 7}", "command": "/headroom",
        "text": WARMUP_QUESTIONS[i % len(WARMUP_QUESTIONS)], "response_url": f"http://127.0.0.1:{slack_port}/webhook/w{i}",
        "trigger_id": f"w{i}",
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=2000)
    parser.add_argument("--mentions", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="bot worker processes (one per core)")
    parser.add_argument("--warmup", type=int, default=100, help="requests sent first and not counted (0: none)")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    ack, e2e = result["ack"], result["e2e"]
    growth = (result["rss_end_kib"] / result["rss_half_kib"] - 1) if result["rss_half_kib"] else float("nan")
    print(f"{result['requests']} requests ({result['commands']} slash commands, {result['mentions']} mentions) after "
          f"{args.warmup} warm-up requests, {args.workers} bot workers, concurrency {result['concurrency']}, {result['elapsed_s']:.1f} s, {result['requests'] / result['elapsed_s']:.0f} req/s")  # fmt: skip
    print(
        f"acknowledgement  p50 {statistics.median(ack):7.1f} ms   p99 {percentile(ack, 0.99):7.1f} ms   max {max(ack):7.1f} ms"
    )
    print(
        f"end to end       p50 {statistics.median(e2e):7.1f} ms   p99 {percentile(e2e, 0.99):7.1f} ms   max {max(e2e):7.1f} ms"
    )
    print(
        f"errors {len(result['errors'])}, answered twice {result['duplicates']}; "
        f"CPU per request: bot {result['bot_cpu_ms_per_request']:.2f} ms, "
        f"load generator + fake Slack {result['driver_cpu_ms_per_request']:.2f} ms"
    )
    for error in result["errors"][:8]:
        print(f"  {error}")
    print(f"bot RSS: {result['rss_half_kib'] / 1024:.1f} MiB after the first half, {result['rss_end_kib'] / 1024:.1f} MiB at the end "
          f"({growth:+.1%}), peak {result['rss_peak_kib'] / 1024:.1f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
