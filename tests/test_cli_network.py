"""The command line's network commands, run as a user runs them against
nginx on a free loopback port: ``caxton-meter http`` and ``caxton-meter
capacity`` -- their output, files, exit codes and every bad input (exit 2
with one line naming the option).  Every run is short and bounded."""
import json
import subprocess
import sys

import pytest

from nginx_server import free_port

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the network loop is Linux's (epoll) for now")


def cli(*args, cwd, timeout=120):
    return subprocess.run([sys.executable, "-m", "caxton_meter.run", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)


def assert_usage(r, *fragments):
    """Exit 2, nothing on stdout, one line of error and the pointer to --help."""
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and "error: " in lines[0] and lines[1].startswith("(see: "), r.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# --- http ---------------------------------------------------------------------------------

def test_http_prints_what_the_open_loop_did_and_writes_json(nginx, tmp_path):
    r = cli("http", nginx.url, "--rate", "500", "--duration", "0.5s", "--connections", "4",
            "--json", "run.json", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert f"GET {nginx.url}: open loop at 500/s for 500 ms over 4 connections" in out
    assert "250 sent, 250 completed, 0 failed, 0 dropped" in out
    assert "asked: the schedule was kept" in out
    assert "from intended start" in out and "from send (uncorrected)" in out
    for label in ("p50", "p90", "p99", "p99.9", "max"):
        assert f"\n  {label} " in out, label
    assert "status      2xx 250" in out and "failures    none" in out
    assert "connect     4 connects, p50 " in out
    data = json.loads((tmp_path / "run.json").read_text())
    assert data["kind"] == "caxton_meter.http" and data["format"] == 1
    assert (data["mode"], data["rate"], data["connections"]) == ("open", 500, 4)
    assert data["planned"] == data["completed"] == 250 and data["failed"] == 0
    assert data["status_classes"]["2xx"] == 250 and data["errors"] == {}
    assert data["latency"]["count"] == 250 and data["latency"]["p99"] >= data["latency"]["p50"]
    assert data["kept_schedule"] is True and data["exit_code"] == 0
    import caxton_meter as cm
    assert cm.Histogram.decode(data["histograms"]["latency"]).total_count == 250


def test_http_closed_loop_reports_its_throughput(nginx, tmp_path):
    r = cli("http", nginx.url, "--closed", "--duration", "300ms", "-c", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "closed loop over 2 connections for 300 ms" in r.stdout
    assert "throughput" in r.stdout and "FELL BEHIND" not in r.stdout


def test_http_exits_1_when_requests_fail_and_says_how(nginx, tmp_path):
    missing = nginx.url.replace("hello.txt", "missing")
    r = cli("http", missing, "--rate", "100", "--duration", "0.2", "-c", "2", "--json", "-",
            cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    data = json.loads(r.stdout)          # --json -: the document alone on stdout
    assert data["errors"] == {"status": 20} and data["status_classes"]["4xx"] == 20
    assert data["exit_code"] == 1
    r = cli("http", missing, "--rate", "100", "--duration", "0.2", "-c", "2", cwd=tmp_path)
    assert r.returncode == 1
    assert "status      4xx 20" in r.stdout and "failures    status 20" in r.stdout


def test_http_exits_1_when_the_loop_cannot_offer_the_rate(nginx, tmp_path):
    # one connection cannot carry 2M requests a second: the queue overflows
    r = cli("http", nginx.url, "--rate", "2M", "--duration", "0.2", "-c", "1",
            "--max-queue", "100", cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FELL BEHIND" in r.stdout and "arrivals dropped" in r.stdout


def test_http_to_a_port_nobody_listens_on_fails_with_refused(tmp_path):
    r = cli("http", f"http://127.0.0.1:{free_port()}/", "--rate", "50", "--duration", "0.1",
            "-c", "1", "--timeout", "1s", cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "failures    refused" in r.stdout


def _interrupted(argv, cwd):
    """The command run, then Ctrl-C after 1.5 s: (exit code, stdout, stderr)."""
    import signal
    import time
    p = subprocess.Popen([sys.executable, "-m", "caxton_meter.run", *argv], cwd=cwd,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    return p.returncode, out, err


def test_http_ctrl_c_prints_the_partial_result_and_exits_130(nginx, tmp_path):
    code, out, err = _interrupted(["http", nginx.url, "--rate", "200", "--duration", "60s",
                                   "-c", "2"], tmp_path)
    assert code == 130, out + err
    assert "open loop at 200/s for 60 s" in out and "\nstopped     by Ctrl-C after " in out
    assert "completed" in out
    assert "interrupted: the result above is partial" in err


@pytest.mark.parametrize("args, fragments", [
    (["http://127.0.0.1:1/"], ["give --rate", "--closed"]),
    (["http://127.0.0.1:1/", "--rate", "10", "--closed"], ["not both"]),
    (["https://127.0.0.1:1/", "--rate", "10"], ["URL https://127.0.0.1:1/", "https is not "
                                                "supported"]),
    (["http://example.com/", "--rate", "10"], ["loopback"]),
    (["http://127.0.0.1:1/", "--rate", "fast"], ["--rate"]),
    (["http://127.0.0.1:1/", "--rate", "10", "--duration", "-1s"], ["--duration"]),
    (["http://127.0.0.1:1/", "--rate", "10", "-H", "no colon"], ["'Name: value'"]),
    (["http://127.0.0.1:1/", "--rate", "10", "-H", "Content-Length: 3"],
     ["written by the target itself"]),
    (["http://127.0.0.1:1/", "--rate", "10", "--method", "GE T"], ["method"]),
    (["http://127.0.0.1:1/", "--rate", "10", "--body", "@/nonexistent/file"],
     ["--body @/nonexistent/file: cannot be read"]),
    (["http://127.0.0.1:1/", "--rate", "10", "--json", "a-file/x.json"],
     ["--json a-file/x.json", "is a file, not a folder"]),
    (["http://127.0.0.1:1/", "--rate", "10", "--conections", "3"], ["did you mean "
                                                                    "--connections?"]),
    ([], ["URL"]),
])
def test_http_usage_errors_exit_2_with_one_line(args, fragments, tmp_path):
    (tmp_path / "a-file").write_text("")
    assert_usage(cli("http", *args, cwd=tmp_path), *fragments)


def test_http_help_documents_the_exit_codes(tmp_path):
    r = cli("http", "--help", cwd=tmp_path)
    assert r.returncode == 0
    for text in ("--rate", "--closed", "--connections", "-H", "--body", "--timeout",
                 "--json", "exit codes", "coordinated omission", "130"):
        assert text in r.stdout, text
    r = cli("--help", cwd=tmp_path)
    assert "caxton-meter http URL" in r.stdout and "caxton-meter capacity" in r.stdout


# --- capacity --------------------------------------------------------------------------------

def test_capacity_prints_the_steps_and_the_verdict_and_writes_html_and_json(nginx, tmp_path):
    r = cli("capacity", "--target", nginx.url, "--slo", "p99 < 100ms", "--start-rate", "500",
            "--max-rate", "2000", "--min-step", "0.25", "--tail-samples", "5",
            "--budget", "6", "-c", "4", "--timeout", "2s", "--output", "capacity.html",
            "--json", "capacity.json", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["#", "phase", "asked", "achieved", "requests", "p50", "p99",
                                "failed", "dropped", "verdict"]
    assert lines[1].split()[:3] == ["1", "rise", "500/s"]
    assert any(line.startswith("capacity ") and "for 'p99 < 100ms'" in line for line in lines)
    assert "report: capacity.html" in r.stdout
    # a line per step on stderr as it ends
    data = json.loads((tmp_path / "capacity.json").read_text())
    assert r.stderr.count("step: ") == len(data["steps"])
    assert data["kind"] == "caxton_meter.capacity" and data["slo"] == ["p99 < 100ms"]
    assert [s["rate"] for s in data["steps"]][:1] == [500]
    assert data["capacity"] is not None and data["capacity"] >= 500
    page = (tmp_path / "capacity.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "Capacity search" in page
    assert 'id="verdict"' in page and 'id="table-steps"' in page
    assert "data:image/svg+xml;base64," in page        # the latency-against-rate plot


def test_capacity_exits_1_when_no_rate_passes(tmp_path):
    r = cli("capacity", "--target", f"http://127.0.0.1:{free_port()}/", "--slo", "p99<10ms",
            "--start-rate", "100", "--min-step", "0.1", "--tail-samples", "1", "--budget", "5",
            "--timeout", "1s", "-c", "1", "--quiet", cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "no capacity found" in r.stdout and "refused" in r.stdout
    assert "step:" not in r.stderr                       # --quiet


def test_capacity_exits_1_below_min_capacity(nginx, tmp_path):
    r = cli("capacity", "--target", nginx.url, "--slo", "p50 < 1s", "--start-rate", "200",
            "--max-rate", "200", "--min-step", "0.25", "--tail-samples", "5", "--budget", "5",
            "-c", "2", "--timeout", "1s", "--min-capacity", "1M", "--quiet", cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "is below --min-capacity 1M/s" in r.stderr or "below --min-capacity" in r.stderr


def test_capacity_ctrl_c_prints_the_steps_so_far_and_exits_130(nginx, tmp_path):
    code, out, err = _interrupted(["capacity", "--target", nginx.url, "--slo", "p99 < 100ms",
                                   "--start-rate", "200", "--min-step", "60s", "--budget", "5m",
                                   "-c", "2", "--timeout", "1s"], tmp_path)
    assert code == 130, out + err
    assert "FAIL: interrupted" in out and "no capacity found" in out
    assert "interrupted: the steps above are all that ran" in err


@pytest.mark.parametrize("args, fragments", [
    (["--slo", "p99 < 10ms"], ["--target"]),
    (["--target", "http://127.0.0.1:1/"], ["--slo"]),
    (["--target", "http://127.0.0.1:1/", "--slo", "p99 < 10 parsecs"],
     ["--slo 'p99 < 10 parsecs'", "unknown unit 'parsecs'"]),
    (["--target", "http://127.0.0.1:1/", "--slo", "max < 1s"], ["max cannot judge a step"]),
    (["--target", "https://127.0.0.1:1/", "--slo", "p99 < 1s"], ["--target", "https"]),
    (["--target", "http://127.0.0.1:1/", "--slo", "p99 < 1s", "--start-rate", "2K",
      "--max-rate", "1K"], ["--max-rate", "--start-rate"]),
    (["--target", "http://127.0.0.1:1/", "--slo", "p99 < 1s", "--precision", "0"],
     ["--precision"]),
    (["--target", "http://127.0.0.1:1/", "--slo", "p99 < 1s", "--factor", "1"],
     ["--factor"]),
    (["--target", "http://127.0.0.1:1/", "--slo", "p99.9 < 1s", "--start-rate", "10",
      "--budget", "10s"], ["would not fit in the budget"]),
    (["--target", "http://127.0.0.1:1/", "--slo", "p99 < 1s", "--output", "a-file/x.html"],
     ["--output a-file/x.html", "is a file, not a folder"]),
])
def test_capacity_usage_errors_exit_2_with_one_line(args, fragments, tmp_path):
    (tmp_path / "a-file").write_text("")
    assert_usage(cli("capacity", *args, cwd=tmp_path), *fragments)
