"""Helpers shared by the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

PKG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # bindings/python
REPO_ROOT = os.path.dirname(os.path.dirname(PKG_ROOT))
HEADER = os.path.join(REPO_ROOT, "include", "tasker.h")


SIGINT_DEFAULT = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
"""Prefix for child code that expects Ctrl-C to raise KeyboardInterrupt. Python installs that
handler only when SIGINT is at its default on startup; a test run started where SIGINT is ignored
(a background job of a non-interactive shell: `make test &`, `nohup ... &`) passes SIG_IGN on to
every child, whose SIGINT then does nothing and the test waits out its timeout."""


def run_python(code: str, *, env: dict[str, str] | None = None, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run code in a fresh interpreter with the package importable; generous 'did not hang' limit."""
    e = dict(os.environ if env is None else env)
    e["PYTHONPATH"] = PKG_ROOT + os.pathsep + e.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, timeout=timeout)


def wait_child(pid: int, timeout: float = 15.0) -> int | None:
    """waitpid with a 'did not hang' limit: the child's exit code, or None after killing it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
