"""Network-target benchmarks (Part 9): the core's network loop against nginx
on the loopback, beside wrk measured in the same run against the same nginx.

- Closed loop, one I/O thread, 50 connections: requests completed per
  second, ours (load_network(closed=True)) and wrk's (`wrk -t1 -c50`),
  repeats interleaved (ours, wrk, ours, wrk, ...), best of each.
- Open loop: the highest fixed arrival rate held (every request sent within
  1 % of the schedule, nothing dropped, none failed), found by doubling and
  then bisecting, with its p99 latency (from intended starts) and send
  jitter p99; beside it wrk's closed-loop maximum from the same run.
- WebSocket, closed loop, 10 connections, 64-byte binary messages, against
  the websockets package's echo server (in a process of its own): messages
  answered per second, ours (load_network(WebSocketTarget(...))) and an
  asyncio client written with websockets, repeats interleaved.  The server,
  one Python thread, is the bottleneck of both: the ratio says how much of
  the 2-core machine each client leaves it.

nginx (tests/nginx.conf, one process) and wrk are Debian's; when missing,
the benchmark installs them with apt-get if it runs as root (they are tools
of the benchmark, never dependencies of caxton_meter).  websockets is in the
`test` dependency group; without it the WebSocket row is left out.

    python benches/bench_network.py [--quick]
"""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

from caxton_meter import HttpTarget, WebSocketTarget, load_network
from _util import Config, Row, Timing, main

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))
from nginx_server import Nginx  # noqa: E402

CONNECTIONS = 50
WS_CONNECTIONS = 10
WS_PAYLOAD = b"x" * 64

# the websockets package's echo server, in a process of its own
WS_SERVER = """
import asyncio, sys
from websockets.asyncio.server import serve

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    async with serve(echo, "127.0.0.1", 0, compression=None, ping_interval=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


def _ensure(command: str, package: str) -> str:
    """The path of ``command``, installing Debian's ``package`` if needed."""
    found = shutil.which(command) or (f"/usr/sbin/{command}"
                                      if os.path.exists(f"/usr/sbin/{command}") else None)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit(f"bench_network needs {command} (apt-get install {package})")
    print(f"installing {package} (apt-get) ...", file=sys.stderr, flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True,
                   stdout=subprocess.DEVNULL)
    found = shutil.which(command) or f"/usr/sbin/{command}"
    if not os.path.exists(found):
        sys.exit(f"bench_network: {package} installed but {command} not found")
    return found


def wrk_rate(wrk: str, url: str, seconds: float) -> float:
    """wrk -t1 -c50's Requests/sec."""
    out = subprocess.run([wrk, "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", url],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise RuntimeError(f"wrk's output has no Requests/sec:\n{out}")
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors against nginx:\n{out}")
    return float(m.group(1))


def ours_closed(url: str, seconds: float) -> float:
    res = load_network(HttpTarget(url, connections=CONNECTIONS), closed=True,
                       duration=max(1, round(seconds)))
    if res.failed:
        raise RuntimeError(f"the closed loop saw failures against nginx: {res.errors}")
    return res.completed_per_second


def held(url: str, rate: float, seconds: float):
    """The run at ``rate`` if it held (nothing dropped or failed, the last
    request sent within 1 % of the schedule's end), else None."""
    res = load_network(HttpTarget(url, connections=CONNECTIONS), rate=rate, duration=seconds)
    ok = (res.dropped == 0 and res.failed == 0 and res.kept_schedule
          and abs(res.achieved_rate - rate) / rate <= 0.01)
    return res if ok else None


def highest_held(url: str, seconds: float, start: float, ceiling: float):
    """Doubling from ``start`` until a rate fails to hold, then bisecting
    to within 5 %: the highest rate held and its run."""
    low, low_res, high = 0.0, None, None
    rate = start
    while rate <= ceiling:
        res = held(url, rate, seconds)
        if res is None:
            high = rate
            break
        low, low_res = rate, res
        rate *= 2
    if high is None:
        return low, low_res
    while high - low > 0.05 * high:
        mid = round((low + high) / 2, -2)
        res = held(url, mid, seconds)
        if res is None:
            high = mid
        else:
            low, low_res = mid, res
    return low, low_res


def ours_websocket(url: str, seconds: float) -> float:
    res = load_network(WebSocketTarget(url, payload=WS_PAYLOAD, connections=WS_CONNECTIONS),
                       closed=True, duration=seconds)
    if res.failed:
        raise RuntimeError(f"the WebSocket closed loop saw failures: {res.errors}")
    return res.completed_per_second


def asyncio_websocket(url: str, seconds: float) -> float:
    """Messages answered per second by WS_CONNECTIONS websockets clients,
    each sending its next message when its reply is in."""
    import asyncio
    import time

    from websockets.asyncio.client import connect

    async def client(end: float) -> int:
        n = 0
        async with connect(url, compression=None, ping_interval=None) as ws:
            while time.perf_counter() < end:
                await ws.send(WS_PAYLOAD)
                await ws.recv()
                n += 1
        return n

    async def main() -> float:
        t0 = time.perf_counter()
        counts = await asyncio.gather(*(client(t0 + seconds) for _ in range(WS_CONNECTIONS)))
        return sum(counts) / (time.perf_counter() - t0)

    return asyncio.run(main())


def websocket_rows(cfg: Config, seconds: float) -> list[Row]:
    try:
        import websockets  # noqa: F401
    except ImportError:
        print("bench_network: websockets is not installed; the WebSocket row is left out",
              file=sys.stderr)
        return []
    server = subprocess.Popen([sys.executable, "-c", WS_SERVER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        url = f"ws://127.0.0.1:{int(server.stdout.readline())}/"
        ours_websocket(url, 0.5)                     # warm the server
        ours_runs, alt_runs = [], []
        for _ in range(cfg.repeat):
            ours_runs.append(ours_websocket(url, seconds))
            alt_runs.append(asyncio_websocket(url, seconds))
        ours_t = Timing(max(ours_runs), sorted(ours_runs)[len(ours_runs) // 2])
        alt_t = Timing(max(alt_runs), sorted(alt_runs)[len(alt_runs) // 2])
    finally:
        server.stdin.close()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
    section = (f"21. WebSocket targets: against the websockets package's echo server, "
               f"{WS_CONNECTIONS} connections, closed loop (vs an asyncio websockets client)")
    # no target: the server bounds both clients; the ratio shows what each leaves it
    return [Row("closed loop: messages answered per second", "msg/s", ours_t, alt_t,
                higher_is_better=True, section=section)]


def run(cfg: Config) -> list[Row]:
    wrk = _ensure("wrk", "wrk")
    _ensure("nginx", "nginx-light")
    seconds = 1.0 if cfg.quick else 2.0
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_network_") as tmp:
        nginx = Nginx(pathlib.Path(tmp))
        try:
            ours_runs, wrk_runs = [], []
            ours_closed(nginx.url, 1)                # warm nginx (its file cache, the sockets)
            for _ in range(cfg.repeat):
                ours_runs.append(ours_closed(nginx.url, seconds))
                wrk_runs.append(wrk_rate(wrk, nginx.url, seconds))
            ours_t = Timing(max(ours_runs), sorted(ours_runs)[len(ours_runs) // 2])
            wrk_t = Timing(max(wrk_runs), sorted(wrk_runs)[len(wrk_runs) // 2])
            section = ("20. network targets: HTTP/1.1 against nginx on the loopback, one I/O "
                       f"thread, {CONNECTIONS} connections (vs wrk -t1 -c{CONNECTIONS})")
            ratio = ours_t.best / wrk_t.best
            rows.append(Row("closed loop: requests completed per second", "req/s", ours_t, wrk_t,
                            ">=0.9x wrk", ratio >= 0.9, higher_is_better=True, section=section))
            rate, res = highest_held(nginx.url, seconds / 2, 5_000.0, 2 * wrk_t.best)
            rows.append(Row("open loop: highest rate held (within 1 %, nothing dropped) vs wrk's "
                            "closed-loop best", "req/s", Timing(rate, rate), wrk_t,
                            ">=0.8x wrk", rate >= 0.8 * wrk_t.best, higher_is_better=True,
                            section=section))
            if res is not None:
                p50, p99 = res.latency.percentiles([50, 99])
                j99 = res.send_jitter.value_at_percentile(99)
                rows.append(Row(f"  at {rate:,.0f}/s: latency p50 / p99 from intended starts, "
                                "send jitter p99", "ns",
                                f"{p50 / 1e3:,.0f} / {p99 / 1e3:,.0f} us, jitter "
                                f"{j99 / 1e3:,.0f} us", section=section))
        finally:
            nginx.stop()
    rows += websocket_rows(cfg, seconds)
    return rows


if __name__ == "__main__":
    main(run, "caxton_meter network-target benchmarks")
