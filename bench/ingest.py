"""Ingest benchmark: signed, encrypted WeCom AI-bot callbacks into a running `serve`.

Three processes: the server under test, and a load generator that keeps ``concurrency``
requests in flight over loopback. The baseline is the same aiohttp stack doing only the
signature check and decryption (``baseline_server`` below), measured in the same run.

Run directly to start the baseline server: ``python bench/ingest.py baseline PORT``.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def make_requests(count: int, seed: int = 1) -> list[tuple[str, bytes]]:
    """Pre-built (query string, body) pairs: encryption is the platform's cost, not ours."""
    from urllib.parse import urlencode

    from tests.doubles.wecom import wx_encrypt, wx_signature

    requests = []
    stamp = str(int(time.time()))
    for number in range(count):
        payload = {
            "msgid": f"bench-{seed}-{number}",
            "aibotid": "bench",
            "chatid": f"wrkBench{number % 100:03d}",
            "chattype": "group",
            "from": {"userid": f"user{(number * 7919) % 5000:05d}"},
            "msgtype": "text",
            "text": {"content": "@群脉 今天的活动几点开始?我想报名参加"},
        }
        encrypt = wx_encrypt(json.dumps(payload, ensure_ascii=False), AES_KEY, "")
        nonce = f"n{number}"
        query = urlencode(
            {
                "msg_signature": wx_signature(TOKEN, stamp, nonce, encrypt),
                "timestamp": stamp,
                "nonce": nonce,
            }
        )
        requests.append((query, json.dumps({"encrypt": encrypt}).encode()))
    return requests


async def _load(url: str, requests: list[tuple[str, bytes]], concurrency: int) -> LoadResult:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    queue = iter(requests)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal errors
            for query, body in queue:
                started = time.perf_counter()
                async with session.post(
                    f"{url}?{query}", data=body, headers={"Content-Type": "application/json"}
                ) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return LoadResult(
        len(requests),
        elapsed,
        statistics.median(latencies) * 1000,
        latencies[int(len(latencies) * 0.99) - 1] * 1000,
        errors,
    )


def run_load(url: str, count: int, concurrency: int, seed: int) -> LoadResult:
    """Drive ``url`` from a separate process so the client does not share the server's core."""
    script = (
        f"import asyncio, json, sys; sys.path.insert(0, {str(ROOT)!r}); "
        "from bench.ingest import _load, make_requests; "
        f"r = asyncio.run(_load({url!r}, make_requests({count}, {seed}), {concurrency})); "
        "print(json.dumps(r.__dict__))"
    )
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return LoadResult(**json.loads(output.strip().splitlines()[-1]))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server under test exited early")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the server under test did not start")


def serve_config(directory: Path, port: int, database_url: str) -> Path:
    config = directory / "qunpulse.toml"
    config.write_text(
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n[storage]\nurl = "{database_url}"\n'
        f'[[bots]]\nid = "bench"\nkind = "wecom_aibot"\ntoken = "{TOKEN}"\n'
        f'encoding_aes_key = "{AES_KEY}"\n',
        encoding="utf-8",
    )
    return config


def measure(
    command: list[str], port: int, count: int, concurrency: int, seed: int, env: dict[str, str]
) -> LoadResult:
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    try:
        wait_ready(port, process)
        run_load(
            f"http://127.0.0.1:{port}/callback/bench", min(count, 500), concurrency, seed + 1000
        )
        return run_load(f"http://127.0.0.1:{port}/callback/bench", count, concurrency, seed)
    finally:
        process.terminate()
        process.wait(timeout=30)


def bench_ingest(
    database_url: str | None, count: int, concurrency: int = 64
) -> tuple[LoadResult, LoadResult]:
    """Return (qunpulse serve, baseline) results for one database."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        url = database_url or f"sqlite:///{directory / 'bench.db'}"
        port = free_port()
        config = serve_config(directory, port, url)
        served = measure(
            [sys.executable, "-m", "bot.cli", "serve", "-c", str(config)],
            port,
            count,
            concurrency,
            1,
            env,
        )
        port = free_port()
        baseline = measure(
            [sys.executable, str(Path(__file__)), "baseline", str(port)],
            port,
            count,
            concurrency,
            1,
            env,
        )
    return served, baseline


def baseline_server(port: int) -> None:
    """The same aiohttp stack and WeCom verification as `serve`, without storage."""
    from datetime import UTC, datetime

    from aiohttp import web
    from pydantic import SecretStr

    from bot.platforms.base import InboundRequest
    from bot.platforms.wecom_aibot import WecomAibot
    from config.settings import WecomAibotSettings

    platform = WecomAibot(
        WecomAibotSettings(
            id="bench",
            kind="wecom_aibot",
            token=SecretStr(TOKEN),
            encoding_aes_key=SecretStr(AES_KEY),
        ),
        lambda: datetime.now(UTC),
    )

    async def callback(request: web.Request) -> web.Response:
        received = platform.receive(
            InboundRequest(
                request.method, dict(request.query), dict(request.headers), await request.read()
            )
        )
        return web.Response(status=received.ack.status, body=received.ack.body)

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/callback/bench", callback)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__" and sys.argv[1:2] == ["baseline"]:
    baseline_server(int(sys.argv[2]))
