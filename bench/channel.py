"""Agent channels at scale: simulated agents on WebSockets against the real `obt serve`.

    python -m bench.channel rate --channels 10000 --rates 2000,5000,10000 [--seconds 20]
    python -m bench.channel connections --channels 18000 [--period 10] [--seconds 30]
    python -m bench.channel profile PROFILE.txt   (a py-spy profile written by --profile)

Load comes from separate processes (`--loaders`, each with its own source address in
127.0.0.0/8: one process may hold 20,000 files, one address ~28,000 ports) built on raw asyncio
protocols with pre-built frames (zero mask key, so no masking work). Every channel is a
registered agent: upgrade with its secret, hello, then heartbeat frames with its next seq,
each acked by the server after it is appended to the log.

`rate`: one channel set, then each offered rate in turn (a warm-up, then a measured window):
acked heartbeats/s, ack p50/p99, server CPU and RSS, projection lag; also the same load
against the no-work baseline (bench/bare_channel.py: the same uvicorn stack acking at once),
which shows what the load generator and the WebSocket stack cost on this machine.
`connections`: server RSS before and after opening every channel (memory per connection),
then a 10 s cadence: CPU per heartbeat.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.server_bench import ADMIN, ENROLL, free_port, register, wait_http

CLK = os.sysconf("SC_CLK_TCK")
DIGEST = "a" * 64


# ---------------------------------------------------------------- the load generator


def _frame(payload: bytes) -> bytes:
    """A masked text frame with a zero mask key: the payload goes out as is."""
    n = len(payload)
    short = n < 126
    head = bytes((0x81, 0x80 | n)) if short else b"\x81\xfe" + n.to_bytes(2, "big")
    return head + b"\x00\x00\x00\x00" + payload


class Channel(asyncio.Protocol):
    """One simulated agent's WebSocket, parsed by hand (server frames are never masked)."""

    def __init__(self, loader: Loader, cid: str, secret: str, session: str) -> None:
        self.loader = loader
        self.cid = cid
        self.session = session
        self.seq = 0
        key = base64.b64encode(os.urandom(16)).decode()
        self.upgrade = (
            f"GET /api/v1/agents/{cid}/channel HTTP/1.1\r\nHost: obt\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {secret}\r\n\r\n"
        ).encode()
        self.tail = (
            f',"session_id":"{session}","sent_at":null,"ollama":{{"reachable":true,'
            f'"version":"0.5.7","latency_ms":2.5,"error":null}},"models_digest":"{DIGEST}"}}}}'
        ).encode()
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.state = "upgrade"
        self.sent: dict[int, float] = {}
        self.ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.upgrade)

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = "closed"
        self.loader.lost += 1
        if not self.ready.done():
            self.ready.set_result(False)

    def beat(self, now: float) -> None:
        if self.state != "open" or self.transport is None:
            return
        self.seq += 1
        s = str(self.seq).encode()
        self.sent[self.seq] = now
        self.transport.write(
            _frame(b'{"type":"heartbeat","id":' + s + b',"body":{"seq":' + s + self.tail)
        )
        self.loader.sent += 1

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if self.state == "upgrade":
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.loader.refused += 1
                self.ready.set_result(False)
                assert self.transport is not None
                self.transport.close()
                return
            buf = buf[end + 4 :]
            self.state = "hello"
            hello = {"type": "hello", "protocol": 1, "session_id": self.session}
            assert self.transport is not None
            self.transport.write(_frame(json.dumps(hello).encode()))
        while len(buf) >= 2:
            opcode, n, off = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, off = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, off = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < off + n:
                break
            payload, buf = buf[off : off + n], buf[off + n :]
            if opcode == 1:
                self.on_text(payload)
            elif opcode == 9 and self.transport is not None:  # ping: pong, masked
                self.transport.write(bytes((0x8A, 0x80 | n)) + b"\x00\x00\x00\x00" + payload)
            elif opcode == 8:
                self.state = "closed"
                self.loader.closed_by_server += 1
        self.buf = buf

    def on_text(self, payload: bytes) -> None:
        if self.state == "hello":
            if b'"welcome"' in payload:
                self.state = "open"
                self.ready.set_result(True)
            return
        if not payload.startswith(b'{"type":"ack","id":'):
            self.loader.other += 1
            return
        comma = payload.index(b",", 19)
        sent = self.sent.pop(int(payload[19:comma]), None)
        if payload.startswith(b'"status":200,', comma + 1):
            self.loader.acked += 1
            if sent is not None and self.loader.measuring:
                self.loader.latencies.append(time.perf_counter() - sent)
        else:
            self.loader.failed += 1
            if self.loader.failed <= 3:
                print(payload[:300].decode(), file=sys.stderr, flush=True)


class Loader:
    """One load process: its share of the channels, opened, then beaten on a schedule."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.sent = self.acked = self.failed = self.other = 0
        self.lost = self.refused = self.closed_by_server = 0
        self.latencies: list[float] = []
        self.measuring = False
        self.channels: list[Channel] = []

    async def open_all(self) -> None:
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(self.spec["open_concurrency"])

        async def one(cid: str, secret: str, session: str) -> None:
            async with gate:
                channel = Channel(self, cid, secret, session)
                try:
                    await loop.create_connection(
                        lambda: channel,
                        self.spec["host"],
                        self.spec["port"],
                        local_addr=(self.spec["source"], 0),
                    )
                    if await asyncio.wait_for(channel.ready, 60):
                        self.channels.append(channel)
                except (OSError, TimeoutError) as exc:
                    self.refused += 1
                    if self.refused <= 3:
                        print(f"open failed: {exc!r}", file=sys.stderr, flush=True)

        await asyncio.gather(*(one(*agent) for agent in self.spec["agents"]))

    async def run_step(self, rate: float, warmup_s: float, measure_s: float) -> dict[str, Any]:
        """Beat every channel in turn at `rate` heartbeats/s in total (this loader's share)."""
        channels = [c for c in self.channels if c.state == "open"]
        if not channels:
            return {"error": "no open channel"}
        start = time.perf_counter()
        end_warm, end = start + warmup_s, start + warmup_s + measure_s
        done = 0
        counts: dict[str, float] = {}
        cpu0 = 0.0
        while True:
            now = time.perf_counter()
            if now >= end:
                break
            if not self.measuring and now >= end_warm:
                self.measuring = True
                counts = {"sent": self.sent, "acked": self.acked, "failed": self.failed}
                cpu0 = _own_cpu()
            due = int((now - start) * rate)
            while done < due:
                channels[done % len(channels)].beat(now)
                done += 1
            await asyncio.sleep(0.002)
        acked, failed = self.acked - counts["acked"], self.failed - counts["failed"]
        cpu = _own_cpu() - cpu0
        await asyncio.sleep(1.0)  # the window's last acks still in flight: their latencies
        self.measuring = False
        lat = sorted(self.latencies)
        self.latencies = []
        return {
            "sent": self.sent - counts["sent"],
            "acked": acked,
            "failed": failed,
            "latencies_ms": [round(x * 1000, 3) for x in lat],
            "cpu_s": cpu,
            "open": len(channels),
            "lost": self.lost,
            "closed_by_server": self.closed_by_server,
        }


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def loader_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text("utf-8"))
    loader = Loader(spec)
    opened = time.perf_counter()
    await loader.open_all()
    ready = {
        "ready": len(loader.channels),
        "refused": loader.refused,
        "open_s": round(time.perf_counter() - opened, 2),
    }
    print(json.dumps(ready), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = json.loads(line)
        if command["do"] == "quit":
            break
        result = await loader.run_step(command["rate"], command["warmup_s"], command["measure_s"])
        print(json.dumps(result), flush=True)
    for channel in loader.channels:
        if channel.transport is not None:
            channel.transport.close()


# ---------------------------------------------------------------- the conductor


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def server_process(
    kind: str, tmp: Path, port: int, interval_s: float
) -> Iterator[subprocess.Popen[bytes]]:
    if kind == "obt":
        env = {
            **os.environ,
            "OBT_PORT": str(port),
            "OBT_DATA_DIR": str(tmp / "data"),
            "OBT_ENROLLMENT_TOKEN": ENROLL,
            "OBT_ADMIN_TOKEN": ADMIN,
            "OBT_RATE_LIMIT_PER_MIN": "100000000",
            "OBT_LOG_LEVEL": "warning",
            "OBT_HEARTBEAT_INTERVAL_S": str(interval_s),
            # Long: channels opened first must not be closed as idle while the rest open.
            "OBT_HEARTBEAT_TIMEOUT_S": str(max(900.0, interval_s * 3)),
        }
        args = [sys.executable, "-m", "obt.cli", "serve"]
        url = f"http://127.0.0.1:{port}/api/v1/health"
    else:
        env = {**os.environ}
        args = [sys.executable, "-m", "bench.bare_channel", "--port", str(port)]
        url = f"http://127.0.0.1:{port}/"
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=sys.stderr)
    try:
        wait_http(url, 120)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Loaders:
    def __init__(
        self, tmp: Path, port: int, agents: list[tuple[str, str, str]], count: int
    ) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        for n in range(count):
            spec = {
                "host": "127.0.0.1",
                "port": port,
                "source": f"127.0.{n // 250}.{10 + n % 250}",
                "agents": agents[n::count],
                "open_concurrency": 64,
            }
            path = tmp / f"loader-{n}.json"
            path.write_text(json.dumps(spec), "utf-8")
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bench.channel", "loader", str(path)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )

    def read(self) -> list[dict[str, Any]]:
        out = []
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"loader {proc.pid} ended early")
            out.append(json.loads(line))
        return out

    def tell(self, command: dict[str, Any]) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(command) + "\n")
            proc.stdin.flush()

    def cpu_s(self) -> float:
        return sum(_cpu_s(p.pid) for p in self.procs)

    def close(self) -> None:
        self.tell({"do": "quit"})
        for proc in self.procs:
            proc.wait(timeout=60)


def lag(base: str) -> int | None:
    try:
        health = httpx.get(f"{base}/api/v1/health", timeout=10).json()
    except httpx.HTTPError:
        return None
    return max((p["lag"] or 0) for p in health["projections"])


def step(
    loaders: Loaders,
    proc: subprocess.Popen[bytes],
    base: str | None,
    rate: float,
    warmup_s: float,
    measure_s: float,
    profile: Path | None = None,
) -> dict[str, Any]:
    loaders.tell(
        {
            "do": "step",
            "rate": rate / len(loaders.procs),
            "warmup_s": warmup_s,
            "measure_s": measure_s,
        }
    )
    time.sleep(warmup_s)
    profiler = None
    if profile is not None:
        profiler = subprocess.Popen(
            [
                shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")),
                "record",
                "--pid",
                str(proc.pid),
                "--duration",
                str(int(measure_s)),
                "--rate",
                "200",
                "--format",
                "raw",
                "--output",
                str(profile),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    cpu0, lcpu0, t0 = _cpu_s(proc.pid), loaders.cpu_s(), time.monotonic()
    lags: list[int] = []
    rss: list[float] = []
    while time.monotonic() - t0 < measure_s:
        time.sleep(1.0)
        rss.append(_rss_mb(proc.pid))
        if base is not None and (value := lag(base)) is not None:
            lags.append(value)
    cpu, lcpu, wall = _cpu_s(proc.pid) - cpu0, loaders.cpu_s() - lcpu0, time.monotonic() - t0
    results = loaders.read()
    if profiler is not None:
        profiler.wait(timeout=120)
    drained_s = None
    if base is not None:
        t1 = time.monotonic()
        while (value := lag(base)) is not None and value > 0 and time.monotonic() - t1 < 120:
            time.sleep(0.2)
        drained_s = round(time.monotonic() - t1, 1)
    latencies = sorted(x for r in results for x in r["latencies_ms"])
    acked = sum(r["acked"] for r in results)
    return {
        "offered": rate,
        "acked_per_s": acked / measure_s,
        "failed": sum(r["failed"] for r in results),
        "p50_ms": _pct(latencies, 50),
        "p99_ms": _pct(latencies, 99),
        "server_cpu": cpu / wall,
        "loaders_cpu": lcpu / wall,
        "cpu_us_per_heartbeat": cpu / max(acked, 1) * 1e6,
        "rss_mb": max(rss) if rss else None,
        "lag_max": max(lags) if lags else None,
        "drained_s": drained_s,
        "closed_by_server": sum(r["closed_by_server"] for r in results),
    }


def _profile_path(base: Path | None, kind: str, rate: float) -> Path | None:
    if base is None or kind != "obt":
        return None
    return base.with_name(f"{base.stem}-{rate:.0f}{base.suffix or '.txt'}")


def _short(frame: str) -> str:
    """`function (path/to/file.py:12)` -> `function (file.py:12)`."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit('/', 1)[-1]}" if where else name


def summarize_profile(path: Path, top: int = 25) -> None:
    """The functions a py-spy raw profile spent its samples in: own time and with callees."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in path.read_text("utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        samples += count
        frames = [_short(frame) for frame in stack.split(";")]
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + count
    print(f"{path.name}: {samples:,} samples")
    for title, table in (("own", own), ("with callees", total)):
        print(f"  top {top} by {title}:")
        for name, count in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
            print(f"    {count / samples * 100:5.1f} %  {name}")


def _pct(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(len(values) * pct / 100))]


def _print_step(kind: str, r: dict[str, Any]) -> None:
    lag_text = f"lag max {r['lag_max']}, drained in {r['drained_s']} s" if kind == "obt" else ""
    print(
        f"  {kind:4s} offered {r['offered']:>7,.0f}/s  acked {r['acked_per_s']:>7,.0f}/s  "
        f"p50 {r['p50_ms'] or 0:7.1f} ms  p99 {r['p99_ms'] or 0:7.1f} ms  "
        f"server CPU {r['server_cpu'] * 100:4.0f} %  loaders CPU {r['loaders_cpu'] * 100:4.0f} %  "
        f"{r['cpu_us_per_heartbeat']:5.0f} us CPU/hb  RSS {r['rss_mb']:6.0f} MB  {lag_text}"
        + (f"  failed {r['failed']}" if r["failed"] else "")
        + (f"  closed {r['closed_by_server']}" if r["closed_by_server"] else ""),
        flush=True,
    )


def run(kind: str, args: argparse.Namespace, tmp: Path, rates: list[float]) -> None:
    port = free_port()
    interval = args.period if args.mode == "connections" else 1.0
    with server_process(kind, tmp / kind, port, interval) as proc:
        base = f"http://127.0.0.1:{port}"
        if kind == "obt":
            agents = asyncio.run(register(base, args.channels))
        else:
            agents = [(f"ch-{i:06d}", "x", str(uuid.uuid4())) for i in range(args.channels)]
        time.sleep(2.0)  # let the registrations' projections and write-behind settle
        before = _rss_mb(proc.pid)
        t0 = time.monotonic()
        loaders = Loaders(tmp, port, agents, args.loaders)
        ready = loaders.read()
        opened = sum(r["ready"] for r in ready)
        open_s = time.monotonic() - t0
        time.sleep(2.0)
        after = _rss_mb(proc.pid)
        per = (after - before) * 1024 / max(opened, 1)
        print(
            f"{kind}: {opened:,} channels open in {open_s:.1f} s "
            f"(refused {sum(r['refused'] for r in ready)}); server RSS {before:.0f} MB before, "
            f"{after:.0f} MB after: {per:.1f} KB per connection",
            flush=True,
        )
        try:
            for rate in rates:
                result = step(
                    loaders,
                    proc,
                    base if kind == "obt" else None,
                    rate,
                    args.warmup,
                    args.seconds,
                    _profile_path(args.profile, kind, rate),
                )
                _print_step(kind, result)
        finally:
            loaders.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["rate", "connections", "loader", "profile"])
    parser.add_argument("spec", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("--channels", type=int, default=10_000)
    parser.add_argument("--rates", default="2000,5000,10000", help="offered heartbeats/s")
    parser.add_argument("--period", type=float, default=10.0, help="connections: cadence, s")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per step")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--loaders", type=int, default=2)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--profile", type=Path, help="py-spy (raw stacks) of the server in each measured window"
    )
    args = parser.parse_args()
    if args.mode == "loader":
        asyncio.run(loader_main(args.spec))
        return
    if args.mode == "profile":
        summarize_profile(Path(args.spec))
        return
    if args.mode == "connections":
        rates = [args.channels / args.period]
    else:
        rates = [float(r) for r in args.rates.split(",")]
    print(
        f"bench.channel {args.mode}: {args.channels:,} channels, {args.loaders} load processes, "
        f"rates {', '.join(f'{r:,.0f}' for r in rates)}/s, {args.warmup:g} s warm-up + "
        f"{args.seconds:g} s measured per step",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        if args.mode == "rate" and not args.no_baseline:
            run("bare", args, Path(tmp), rates)
        run("obt", args, Path(tmp), rates)


if __name__ == "__main__":
    main()
