"""Keep one process running: restart it when it exits or stops showing signs of life.

``python -m config.supervise [--liveness-file PATH --max-age SECONDS] -- command ...``

honcho (``make run``, the README's recipe) stops every process as soon as one exits: a Celery
worker killed by a broker outage, or a dead redis-server, took the web server down with it
(issue #13, item 12). Each Procfile line runs under this supervisor instead: when its command
exits, it is started again after a short, growing pause (1 s, doubling up to 30 s, back to 1 s
after a minute of good running). With ``--liveness-file``, the command must also touch that file
(the Celery worker does, from its event loop: config/celery.py); a file older than
``--max-age`` seconds means the process hangs (alive, consuming nothing, deaf to SIGTERM), and it
is killed (SIGKILL) and restarted. SIGTERM or SIGINT to the supervisor stops the command
(SIGTERM, then SIGKILL after 10 s) and the supervisor, so honcho's own stop still works.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

MIN_PAUSE = 1.0
MAX_PAUSE = 30.0
GOOD_RUN_SECONDS = 60.0
STOP_GRACE_SECONDS = 10.0


class Supervisor:
    def __init__(
        self, command: list[str], liveness_file: Path | None = None, max_age: float = 60.0
    ) -> None:
        self.command = command
        self.liveness_file = liveness_file
        self.max_age = max_age
        self.child: subprocess.Popen | None = None
        self.stopping = False
        self.restarts = 0

    def _log(self, message: str) -> None:
        print(f"supervise[{os.getpid()}]: {message}", file=sys.stderr, flush=True)

    def stop(self, signum: int, _frame: object) -> None:
        self.stopping = True
        child = self.child
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    def _stale(self, started: float) -> bool:
        if self.liveness_file is None:
            return False
        try:
            touched = self.liveness_file.stat().st_mtime
        except FileNotFoundError:
            touched = 0.0
        # Measured from its start until the command has touched the file once.
        last_sign = max(touched, started)
        return time.time() - last_sign > self.max_age

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        pause = MIN_PAUSE
        code = 0
        while not self.stopping:
            started = time.time()
            self.child = subprocess.Popen(self.command)
            while self.child.poll() is None:
                if self.stopping:
                    break
                if self._stale(started):
                    self._log(
                        f"no sign of life for {self.max_age:.0f} s: killing {self.command[0]}"
                    )
                    self.child.kill()
                    break
                time.sleep(0.5)
            if self.stopping:
                try:
                    code = self.child.wait(STOP_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    self.child.kill()
                    code = self.child.wait()
                break
            code = self.child.wait()
            ran = time.time() - started
            pause = MIN_PAUSE if ran > GOOD_RUN_SECONDS else min(MAX_PAUSE, pause * 2)
            self.restarts += 1
            self._log(
                f"{self.command[0]} exited ({code}); restart {self.restarts} in {pause:.0f} s"
            )
            deadline = time.monotonic() + pause
            while not self.stopping and time.monotonic() < deadline:
                time.sleep(0.1)
        return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--liveness-file", type=Path)
    parser.add_argument("--max-age", type=float, default=60.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("a command to run is required")
    return Supervisor(command, args.liveness_file, args.max_age).run()


if __name__ == "__main__":
    sys.exit(main())
