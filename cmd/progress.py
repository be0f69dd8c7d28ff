"""Progress of a CLI verb's waits on a terminal: one status line, redrawn, and a line per step done.

:func:`terminal_progress` shows, while a verb runs, what :func:`pkg.runtime.kcp.wait_for` is
waiting for (a workspace becoming Ready, an APIBinding becoming Bound, an export getting its
identity) and for how long, on stderr, and leaves a ``done`` line for every wait that took a
noticeable time.  It does nothing unless stderr is a terminal, so what scripts and tests read
(stdout's result line, stderr's error line) is the same with or without it.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import TextIO

from pkg.runtime import kcp

SPINNER = "|/-\\"
SHOW_DONE_AFTER = 0.5  # seconds: a wait that ended sooner leaves no line behind
REDRAW = 0.2  # seconds between redraws of the status line


class TerminalProgress:
    """Draws ``<verb>: waiting for <what> (<n>s)`` on one line of ``out``, a terminal."""

    def __init__(self, verb: str, out: TextIO) -> None:
        self.verb = verb
        self.out = out
        self._lock = threading.Lock()
        self._what: str | None = None
        self._since = 0.0
        self._tick = 0
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._redraw_loop, name="progress", daemon=True)

    def observe(self, what: str, waited: float, done: bool) -> None:
        """A :data:`pkg.runtime.kcp.WaitObserver`."""
        with self._lock:
            if done:
                self._clear()
                if waited >= SHOW_DONE_AFTER:
                    self.out.write(f"{self.verb}: {what}: done ({waited:.1f}s)\n")
                self._what = None
            else:
                if self._what != what:
                    self._what, self._since = what, time.monotonic() - waited
                self._draw()
            self.out.flush()

    def _draw(self) -> None:
        if self._what is None:
            return
        self._tick += 1
        spin = SPINNER[self._tick % len(SPINNER)]
        waited = time.monotonic() - self._since
        self.out.write(f"\r\x1b[K{spin} {self.verb}: waiting for {self._what} ({waited:.0f}s)")

    def _clear(self) -> None:
        self.out.write("\r\x1b[K")

    def _redraw_loop(self) -> None:
        while not self._stop.wait(REDRAW):
            with self._lock:
                if self._what is not None:
                    self._draw()
                    self.out.flush()

    def __enter__(self) -> TerminalProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        with self._lock:
            if self._what is not None:
                self._clear()
                self._what = None
            self.out.flush()


@contextlib.contextmanager
def terminal_progress(verb: str, out: TextIO | None = None) -> Iterator[None]:
    """Show the waits of the enclosed code as progress on ``out`` (stderr) if it is a terminal."""
    stream = sys.stderr if out is None else out
    if not stream.isatty():
        yield
        return
    with TerminalProgress(verb, stream) as progress:
        token = kcp.wait_observer.set(progress.observe)
        try:
            yield
        finally:
            kcp.wait_observer.reset(token)
