"""klog-style logging: ``-v N`` verbosity and one line per event with key=value pairs.

Line format: ``I1125 23:18:58.123456 12345 file.py:42] message key=value key="a b"``, as klog prints.
Verbosity: ``-v 0`` shows INFO and above; each level above 0 lowers the threshold by one step
below INFO (``log.log(klog.V(2), ...)`` shows with ``-v 2`` and higher).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

_LETTER = {
    logging.DEBUG: "D",
    logging.INFO: "I",
    logging.WARNING: "W",
    logging.ERROR: "E",
    logging.CRITICAL: "F",
}


def V(level: int) -> int:
    """The logging level for klog verbosity ``level`` (V(0) is INFO)."""
    return logging.INFO - level


def kv(**pairs: Any) -> str:
    """Format key=value pairs, quoting values with spaces or quotes."""
    out = []
    for key, value in pairs.items():
        text = str(value)
        if not text or any(c in text for c in ' "=\n'):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        out.append(f"{key}={text}")
    return " ".join(out)


class KlogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        letter = _LETTER.get(record.levelno, "I" if record.levelno < logging.WARNING else "W")
        t = time.localtime(record.created)
        micros = int((record.created % 1) * 1_000_000)
        head = (
            f"{letter}{t.tm_mon:02d}{t.tm_mday:02d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}."
            f"{micros:06d} {os.getpid():7d} {record.filename}:{record.lineno}]"
        )
        line = f"{head} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup(verbosity: int = 0, stream: Any = None) -> None:
    """Route the root logger to stderr in klog format at verbosity ``verbosity``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(KlogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(V(verbosity))
    # The client libraries are chatty below WARNING.
    for noisy in ("urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbosity < 6 else V(verbosity))
