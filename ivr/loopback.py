"""Run ``ivr serve`` in a child process on a free loopback port: for the end-to-end
tests and the latency benchmark, which must exercise the real WSGI server."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent


def always_open_flows(folder: Path) -> Path:
    """A copy of the example flows whose bank is open around the clock (for tests that
    run on the real clock, such as those through a real server)."""
    shutil.copytree(ROOT / "flows", folder, dirs_exist_ok=True)
    bank = folder / "bank.yaml"
    text = re.sub(r'\["\d\d:\d\d-\d\d:\d\d"\]', '["00:00-24:00"]', bank.read_text())
    text = re.sub(r"    holidays: \[.*\]\n", "", text)
    bank.write_text(text.replace('      sat: ["00:00-24:00"]',
                                 '      sat: ["00:00-24:00"]\n      sun: ["00:00-24:00"]'))
    return folder


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoopbackServer:
    """``with LoopbackServer(...) as srv: srv.url`` serves until the block ends."""

    def __init__(self, data_dir: Path, token: str, flows_dir: Path | None = None,
                 workers: int = 2, port: int | None = None, extra_env: dict[str, str] | None = None,
                 log_path: Path | None = None, threads: int | None = None) -> None:
        self.data_dir, self.token, self.flows_dir = data_dir, token, flows_dir
        self.workers, self.port = workers, port or free_port()
        self.extra_env = extra_env or {}
        self.threads = threads
        self.log_path = log_path or data_dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 90.0) -> LoopbackServer:
        cmd = [sys.executable, "-m", "ivr.cli", "serve", "--host", "127.0.0.1",
               "--port", str(self.port), "--workers", str(self.workers),
               "--data-dir", str(self.data_dir), "--log-level", "warning"]
        if self.flows_dir is not None:
            cmd += ["--flows", str(self.flows_dir)]
        if self.threads is not None:
            cmd += ["--threads", str(self.threads)]
        env = {**os.environ, "TWILIO_AUTH_TOKEN": self.token, **self.extra_env}
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:  # the child keeps its own handle
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; "
                                   f"see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not healthy after {timeout_s}s; see {self.log_path}")

    def worker_pids(self) -> list[int]:
        """Process ids of the server's gunicorn workers (Linux: the master's children)."""
        if self.proc is None:
            return []
        pid = self.proc.pid
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> LoopbackServer:
        return self.start(timeout_s=90.0)  # a loaded CI machine imports slowly

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
