"""Load test of ``iuie serve``: dynamic batching on versus off, side by side, on real servers on 127.0.0.1.

Two servers over the same checkpoint (``--max-batch 32``, decodes of at most ``--max-rows`` rows, and
``--max-batch 1``, each compiled before its first request) take bounded runs of 1, 8 and 32 concurrent
clients; each run is split in halves played A B A B, so load from other processes hits both sides alike.
Requests are single synthetic test sentences (NER with the corpus's own labels) with ``--malformed`` (default
10%) bad ones mixed in, cycling through the kinds of bad input (not JSON, empty text, unknown task, duplicate
labels, a wrong type). Printed: throughput and p50/p99 latency of the well-formed requests per side and run,
the ratio, the load average before and after; JSON lines too. Requirements checked (exit 1 otherwise): no
well-formed request fails, every malformed one is a 4xx, and with 32 clients batching serves >= 3x the
requests per second of unbatched serving.

The clients are plain asyncio HTTP/1.1 (``asyncio.open_connection``, one keep-alive connection each), not
an httpx pool: on a 2-core machine the clients share the CPU with both servers, and the thinner they are the
less of it they take from what is measured.

    python bench/serve_load.py --checkpoint /tmp/iuie_demo            # 2,000 requests in all

Only loopback traffic; every loop is bounded by the request count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEVELS = {1: 0.1, 8: 0.3, 32: 0.6}  # share of the requests each concurrency level gets


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def corpus(limit: int = 400) -> tuple[list[str], list[str]]:
    """Test sentences and entity types of iuie's synthetic corpus (what the demo model was trained on)."""
    sys.path.insert(0, REPO)
    from iuie.ie import synthetic

    root = tempfile.mkdtemp(prefix="serve_load_")
    folders = synthetic.generate(root)
    folder = next(f for f in folders if f.task == "NER")
    records, _ = folder.load("test", strict=True, limit=limit)
    labels = (
        list(folder.labels().types)
        if hasattr(folder, "labels")
        else sorted({e.type for r in records for e in r.entities})
    )
    return [r.sentence for r in records], labels


def malformed(i: int, text: str, labels: list[str]) -> tuple[bytes, str]:
    kinds = [
        (b'{"text": "unterminated', "not JSON"),
        (json.dumps({"text": "", "task": "ner", "labels": labels}).encode(), "empty text"),
        (json.dumps({"text": text, "task": "parse", "labels": labels}).encode(), "unknown task"),
        (json.dumps({"text": text, "task": "ner", "labels": [labels[0], labels[0]]}).encode(), "duplicate labels"),
        (json.dumps({"text": 42, "task": "ner", "labels": labels}).encode(), "wrong type"),
    ]
    return kinds[i % len(kinds)]


def plan(total: int, share: float, texts: list[str], labels: list[str], seed: int) -> list[tuple[bytes, bool]]:
    rng = random.Random(seed)
    out = []
    for i in range(total):
        text = rng.choice(texts)
        if rng.random() < share:
            out.append((malformed(i, text, labels)[0], False))
        else:
            out.append((json.dumps({"text": text, "task": "ner", "labels": labels}).encode(), True))
    return out


class Connection:
    """One keep-alive HTTP/1.1 connection to the server (reopened if the server closes it)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        """The status of ``POST path`` with a JSON ``body`` (the response body is read and dropped)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode("ascii") + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        length, close = None, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value == "close":
                close = True
        if length is None:
            raise ConnectionError(f"a {status} response without Content-Length")
        await self.reader.readexactly(length)
        if close:
            await self.close()
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None


async def play(url: str, requests: list[tuple[bytes, bool]], clients: int) -> dict:
    """``clients`` concurrent clients send ``requests`` (each once); latencies of the well-formed ones."""
    host, port = url.removeprefix("http://").split(":")
    queue = list(reversed(requests))
    latencies: list[float] = []
    bad = {"well_formed_failed": 0, "malformed_not_4xx": 0, "malformed_4xx": 0, "transport_errors": 0}

    async def worker():
        connection = Connection(host, int(port))
        try:
            while queue:
                body, good = queue.pop()
                t0 = time.perf_counter()
                try:
                    status = await asyncio.wait_for(connection.post("/v1/extract", body), 300)
                except (TimeoutError, OSError, ConnectionError, asyncio.IncompleteReadError, ValueError):
                    await connection.close()
                    bad["transport_errors"] += 1
                    bad["well_formed_failed" if good else "malformed_not_4xx"] += 1
                    continue
                if good:
                    if status == 200:
                        latencies.append(time.perf_counter() - t0)
                    else:
                        bad["well_formed_failed"] += 1
                elif 400 <= status < 500:
                    bad["malformed_4xx"] += 1
                else:
                    bad["malformed_not_4xx"] += 1
        finally:
            await connection.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - start
    return {"wall": wall, "latencies": latencies, "requests": len(requests), **bad}


def get_json(url: str, timeout: float = 5) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def start_server(checkpoint: str, max_batch: int, args) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "iuie.cli",
        "serve",
        "--checkpoint",
        checkpoint,
        "--port",
        str(port),
        "--max-batch",
        str(max_batch),
        "--max-wait-ms",
        str(args.max_wait_ms),
        "--no-constrained",
        "--max-decode-length",
        str(args.max_decode_length),
        "--max-input-tokens",
        str(args.max_input_tokens),
        "--log-level",
        "warning",
    ]
    if max_batch > 1:
        command += ["--max-rows", str(args.max_rows)]
        if args.row_buckets:
            command += ["--row-buckets", args.row_buckets]
    env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
    log = open(os.path.join(tempfile.gettempdir(), f"serve_load_{port}.log"), "w")
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT), f"http://127.0.0.1:{port}"


def wait_ready(process: subprocess.Popen, url: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server at {url} exited with status {process.returncode}")
        try:
            return get_json(url + "/v1/info")
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    raise RuntimeError(f"the server at {url} was not ready in {timeout:.0f}s")


def summary(runs: list[dict]) -> dict:
    lat = sorted(x for r in runs for x in r["latencies"])
    wall = sum(r["wall"] for r in runs)
    done = sum(r["requests"] for r in runs)
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")  # noqa: E731
    return {
        "requests": done,
        "well_formed_ok": len(lat),
        "req_per_s": done / wall,
        "ok_per_s": len(lat) / wall,
        "p50_ms": q(0.50),
        "p99_ms": q(0.99),
        "well_formed_failed": sum(r["well_formed_failed"] for r in runs),
        "malformed_4xx": sum(r["malformed_4xx"] for r in runs),
        "malformed_not_4xx": sum(r["malformed_not_4xx"] for r in runs),
        "transport_errors": sum(r["transport_errors"] for r in runs),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--requests", type=int, default=2000, help="requests in all, both sides, all levels")
    parser.add_argument("--malformed", type=float, default=0.1)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--max-rows", type=int, default=8, help="rows of one batched decode at most")
    parser.add_argument("--row-buckets", default=None, help="decode row sizes (default: the server's 1,2,4,..)")
    parser.add_argument("--max-decode-length", type=int, default=64)
    parser.add_argument(
        "--max-input-tokens", type=int, default=128, help="window budget (the synthetic sentences fit 128)"
    )
    parser.add_argument("--ready-timeout", type=float, default=900)
    parser.add_argument("--json", default=None, help="also write the results as JSON to this file")
    args = parser.parse_args()

    texts, labels = corpus()
    load_before = os.getloadavg()
    sides = {"batched": args.max_batch, "unbatched": 1}
    servers = {name: start_server(args.checkpoint, size, args) for name, size in sides.items()}
    try:
        for name, (process, url) in servers.items():
            info = wait_ready(process, url, args.ready_timeout)
            print(
                f"{name}: {url}, {info['compiled_shapes']} shapes compiled in {info['warm_up_seconds']}s, "
                f"row buckets {info['row_buckets']}",
                flush=True,
            )
        results: dict[int, dict[str, dict]] = {}
        for level, weight in LEVELS.items():
            per_side = max(int(args.requests * weight / 2), 2 * level)
            halves = {name: [] for name in sides}
            for half in range(2):  # A B A B
                for name, (_, url) in servers.items():
                    reqs = plan(per_side // 2, args.malformed, texts, labels, seed=level * 10 + half)
                    halves[name].append(asyncio.run(play(url, reqs, level)))
            results[level] = {name: summary(runs) for name, runs in halves.items()}
            for name in sides:
                print(json.dumps({"clients": level, "side": name, **results[level][name]}), flush=True)
        stats = {name: get_json(url + "/v1/health")["batches"] for name, (_, url) in servers.items()}
    finally:
        for process, _ in servers.values():
            process.terminate()
        for process, _ in servers.values():
            process.wait(30)

    load = os.getloadavg()
    print(
        f"\nload average {load_before[0]:.1f} before, {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} after, "
        f"on {os.cpu_count()} cores (a shared machine)"
    )
    print(
        f"{'clients':>7} | {'batched req/s':>13} {'p50 ms':>8} {'p99 ms':>8} | {'unbatched req/s':>15} "
        f"{'p50 ms':>8} {'p99 ms':>8} | {'ratio':>5}"
    )
    for level, sides_ in results.items():
        b, u = sides_["batched"], sides_["unbatched"]
        print(
            f"{level:>7} | {b['req_per_s']:>13.1f} {b['p50_ms']:>8.0f} {b['p99_ms']:>8.0f} | "
            f"{u['req_per_s']:>15.1f} {u['p50_ms']:>8.0f} {u['p99_ms']:>8.0f} | {b['req_per_s'] / u['req_per_s']:>5.2f}"
        )
    print(
        f"mean texts per decode: batched {stats['batched']['mean_texts_per_batch']}, "
        f"unbatched {stats['unbatched']['mean_texts_per_batch']}"
    )
    failed = sum(s["well_formed_failed"] for r in results.values() for s in r.values())
    not4xx = sum(s["malformed_not_4xx"] for r in results.values() for s in r.values())
    total = sum(s["requests"] for r in results.values() for s in r.values())
    top = max(results)
    ratio = results[top]["batched"]["req_per_s"] / results[top]["unbatched"]["req_per_s"]
    print(
        f"{total} requests; well-formed failed: {failed}; malformed not 4xx: {not4xx}; "
        f"batching at {top} clients: {ratio:.2f}x"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "batch_stats": stats, "load": load}, f, indent=1)
    ok = failed == 0 and not4xx == 0 and ratio >= 3.0
    print("requirements met" if ok else "REQUIREMENTS NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
