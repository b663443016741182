"""nginx on a free loopback port, for the network tests and benchmarks.

``Nginx(directory)`` writes tests/nginx.conf (its placeholders filled) and a
static body into ``directory``, starts Debian's nginx there in the
foreground, and waits until it accepts connections; ``stop()`` ends it.
``NGINX`` is the binary, or None when nginx is not installed.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess
import time

CONFIG = pathlib.Path(__file__).resolve().parent / "nginx.conf"
NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if pathlib.Path(p).is_file()), None)
BODY = b"hello\n"          # the 6-byte body of the measurements
PATH = "/hello.txt"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _temp_paths(binary: str) -> str:
    """The temp paths of the modules this nginx was built with (nginx-light
    leaves some out, and a directive of a missing module is an error)."""
    built = subprocess.run([binary, "-V"], capture_output=True, text=True).stderr
    return "\n".join(f"    {m}_temp_path {{dir}}/{m};" for m in ("proxy", "fastcgi", "uwsgi", "scgi")
                     if f"--without-http_{m}_module" not in built)


class Nginx:
    def __init__(self, directory: pathlib.Path, *, startup_timeout: float = 10.0,
                 worker_connections: int = 1024) -> None:
        if NGINX is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx-light)")
        self.dir = pathlib.Path(directory)
        (self.dir / "www").mkdir(parents=True, exist_ok=True)
        (self.dir / "www" / PATH.lstrip("/")).write_bytes(BODY)
        self.port = free_port()
        text = CONFIG.read_text().replace("{temp_paths}", _temp_paths(NGINX))
        text = text.replace("{dir}", str(self.dir)).replace("{port}", str(self.port))
        text = text.replace("{worker_connections}", str(worker_connections))
        text = text.replace("{rlimit}", str(2 * worker_connections + 64))
        conf = self.dir / "nginx.conf"
        conf.write_text(text)
        self.url = f"http://127.0.0.1:{self.port}{PATH}"
        self.process = subprocess.Popen(
            [NGINX, "-p", str(self.dir), "-e", str(self.dir / "error.log"), "-c", str(conf)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            # not the sanitizer's runtime a test run may preload: nginx is not built for it
            env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"})
        end = time.monotonic() + startup_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited ({self.process.returncode}): "
                                   f"{self.process.stderr.read().decode(errors='replace')}"
                                   f"{self.error_log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > end:
                    self.stop()
                    raise RuntimeError(f"nginx did not listen on {self.port} within "
                                       f"{startup_timeout:g} s: {self.error_log()}") from None
                time.sleep(0.02)

    def error_log(self) -> str:
        log = self.dir / "error.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process.stderr is not None:
            self.process.stderr.close()
