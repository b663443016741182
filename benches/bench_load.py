"""Load-generation benchmarks (Part 3): how precisely the compiled open loop
holds its intended rate, and the highest rate it holds, against a native
sink and a no-op Python agent, beside the plain-Python alternative measured
in the same run: an asyncio loop pacing with asyncio.sleep.

Achieved rate = requests sent / the time it took to send them (the
schedule, or up to the last send when the loop fell behind); jitter = real
send time - intended send time.

    python benches/bench_load.py [--quick]
"""
from __future__ import annotations

import asyncio
from time import perf_counter_ns

from hdrh.histogram import HdrHistogram

from caxton_meter import Router
from caxton_meter._core import open_loop, open_loop_call
from _util import Config, Row, Timing, main


def asyncio_pacer(rate: float, seconds: float) -> tuple[float, int, int]:
    """A plain asyncio open loop: sleep until each request's intended time,
    then 'send' it (a no-op call).  Returns (achieved rate, jitter p50 ns,
    jitter p99 ns)."""
    jitter = HdrHistogram(1, 3_600_000_000_000, 3)

    def target() -> None:
        pass

    async def run() -> int:
        period = 1e9 / rate
        t0 = perf_counter_ns()
        n = 0
        total = int(rate * seconds)
        while n < total:
            due = t0 + n * period
            now = perf_counter_ns()
            if due > now:
                await asyncio.sleep((due - now) / 1e9)
                now = perf_counter_ns()
            target()
            jitter.record_value(max(1, int(now - due)))
            n += 1
        return n

    sent = asyncio.run(run())
    return sent / seconds, jitter.get_value_at_percentile(50), jitter.get_value_at_percentile(99)


def _noop() -> None:
    pass


def ours(rate: float, seconds: float, python: bool) -> tuple[float, int, int, int]:
    r = Router(keep_replies=False)
    targets = r.spawn_python(lambda m: None, count=4) if python else r.spawn_native("sink", count=4)
    res = open_loop(r, targets, [(rate, seconds)], one_way=True)
    p50, p99 = res.send_jitter.percentiles([50, 99])
    return res.achieved_rate, p50, p99, res.dropped


def run(cfg: Config) -> list[Row]:
    seconds = 0.5 if cfg.quick else 2.0
    rows = []
    section = "13. open loop: rate held and send jitter (vs an asyncio pacing loop)"
    for rate in (10_000, 100_000):
        alt_rate, alt50, alt99 = asyncio_pacer(rate, seconds)
        got, p50, p99, dropped = ours(rate, seconds, python=False)
        off = abs(got - rate) / rate
        rows.append(Row(f"{rate:,}/s to native sinks: achieved rate", "req/s", Timing(got, got),
                        Timing(alt_rate, alt_rate), "within 1%" if rate == 100_000 else "-",
                        off <= 0.01 if rate == 100_000 else None, higher_is_better=True,
                        section=section))
        rows.append(Row(f"  send jitter p50 / p99 (asyncio: {alt50:,} / {alt99:,} ns)", "ns",
                        f"{p50:,} / {p99:,} ns", section=section))
    # the asyncio driver (open_loop_async) pacing no-op coroutines at 2,000/s:
    # its send lateness beside the plain asyncio pacer's at the same rate
    from caxton_meter._aioload import open_loop_async

    async def nothing() -> None:
        pass
    alt_rate, alt50, alt99 = asyncio_pacer(2000, seconds)
    res = asyncio.run(open_loop_async(nothing, [(2000, seconds)]))
    p50, p99 = (max(1, v) for v in res.send_jitter.percentiles([50, 99]))
    rows.append(Row(f"open_loop_async at 2,000/s: send lateness p50 (asyncio pacer: "
                    f"{alt50 / 1e3:,.0f} us)", "ns", Timing(p50, p50), Timing(alt50, alt50),
                    section=section))
    rows.append(Row(f"  its p99 (asyncio pacer: {alt99 / 1e3:,.0f} us)", "ns", Timing(p99, p99),
                    Timing(alt99, alt99), section=section))
    section = "14. open loop: the highest rate held (achieved within 1% of intended, nothing dropped)"
    for label, python, rates in (("native sinks", False, (1e6, 2e6, 4e6, 8e6)),
                                 ("no-op Python agents", True, (5e5, 1e6, 2e6, 4e6))):
        best = 0.0
        for rate in rates:
            got, p50, p99, dropped = ours(rate, seconds / 2, python)
            if abs(got - rate) / rate <= 0.01 and dropped == 0:
                best = rate
        rows.append(Row(f"to {label}", "/s", Timing(best, best), target=">=2 M/s" if not python else "-",
                        ok=best >= 2e6 if not python else None, higher_is_better=True,
                        section=section))
    best = 0.0
    for rate in (2.5e5, 5e5, 1e6, 2e6):
        res = open_loop_call(_noop, [(rate, seconds / 2)])
        if abs(res.achieved_rate - rate) / rate <= 0.01 and res.dropped == 0:
            best = rate
    rows.append(Row("to a no-op Python callable (open_loop_call)", "/s", Timing(best, best),
                    higher_is_better=True, section=section))
    alt_rate, _, alt99 = asyncio_pacer(1e6, seconds / 2)
    rows.append(Row(f"  asyncio pacing loop asked for 1 M/s (a no-op call): achieved, jitter p99 "
                    f"{alt99 / 1e6:,.1f} ms", "/s", Timing(alt_rate, alt_rate),
                    higher_is_better=True, section=section))
    section_b = ("14b. open loop over worker threads: the highest rate to compute agents "
                 "(1000 units) with p99 < 1 ms (vs the same loop without workers)")
    held = {}
    for workers in (1, 0):
        best = 0.0
        for rate in (1e5, 2e5, 3e5, 4e5):
            r = Router(keep_replies=False, workers=workers)
            agents = r.spawn_native("compute", units=1000, count=8)
            res = open_loop(r, agents, [(rate, seconds / 2)])
            if (abs(res.achieved_rate - rate) / rate <= 0.01 and res.dropped == 0
                    and res.latency.value_at_percentile(99) < 1_000_000):
                best = rate
        held[workers] = best
    rows.append(Row("1 worker thread (the calling thread paces and takes the replies)", "/s",
                    Timing(held[1], held[1]), Timing(held[0], held[0]), higher_is_better=True,
                    section=section_b))
    return rows


if __name__ == "__main__":
    main(run, "caxton_meter load-generation benchmarks")
