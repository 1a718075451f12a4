"""Files and streams of the command line: safe outputs, signals, stdin, stderr.

An output file is written to a temporary file beside it and renamed into place
once complete (:func:`atomic_output`), so readers never see half a file and a
failure or a signal leaves the previous file untouched and no temporary file
behind (:func:`signals_raise` turns SIGTERM and SIGHUP into an exception that
unwinds like Ctrl-C does). :func:`spooled_stdin` copies standard input to a
temporary file, so every reader gets a file it can seek in.
:func:`log_stream` is where the command line's messages and the estimators'
progress go: standard error, without ANSI colours unless it is a terminal.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "Terminated",
    "atomic_output",
    "log_stream",
    "same_file",
    "signals_raise",
    "spooled_stdin",
    "wants_colour",
]

STDIO = "-"


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived; unwinds the stack so cleanups run.

    A ``BaseException`` like :class:`KeyboardInterrupt`, so no ``except
    Exception`` on the way swallows it.
    """

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_terminated(signum, frame):
    raise Terminated(signum)


@contextmanager
def signals_raise():
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated`.

    Python's default action for them ends the process at once, skipping every
    ``finally``; raising instead lets temporary files be removed. A signal the
    process was started with ignored stays ignored (``nohup`` ignores SIGHUP so
    that the job outlives the terminal). The previous handlers come back on
    exit. Outside the main thread (where handlers cannot be set) the block
    runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    names = ("SIGTERM", "SIGHUP")
    numbers = [getattr(signal, n) for n in names if hasattr(signal, n)]
    numbers = [s for s in numbers if signal.getsignal(s) is not signal.SIG_IGN]
    previous = {s: signal.signal(s, _raise_terminated) for s in numbers}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def same_file(a, b):
    """Whether paths ``a`` and ``b`` name one existing file (links included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


@contextmanager
def atomic_output(path):
    """Write ``path`` through a temporary file renamed into place on success.

    The temporary file is created beside ``path`` (a rename is atomic only
    within one file system) with the permissions a new file gets under the
    umask, or those of the file being replaced; a symbolic link is followed,
    so the link stays and its target is replaced.

    Yields
    ------
    fh : binary file object
    """
    path = Path(os.path.realpath(path))
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            # 0o666: the umask then removes what it removes for any new file.
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as fh:
            if mode is not None:
                os.chmod(tmp, mode)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def spooled_stdin():
    """Standard input copied to a temporary file; yields its path.

    Readers look at the first bytes and then start over, and Parquet and NPZ
    need random access; a pipe allows neither. The file is removed when the
    block ends, by an error or a signal too (see :func:`signals_raise`).
    """
    fd, name = tempfile.mkstemp(prefix="skssl-stdin-")
    try:
        with os.fdopen(fd, "wb") as fh:
            shutil.copyfileobj(sys.stdin.buffer, fh, 1 << 20)
        yield Path(name)
    finally:
        os.unlink(name)


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def wants_colour(stream):
    """ANSI colours only on a terminal, and never with ``NO_COLOR`` set."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class _PlainWriter(io.TextIOBase):
    """A text stream that drops ANSI escape sequences before writing on."""

    def __init__(self, target):
        self._target = target

    def writable(self):
        return True

    def write(self, text):
        self._target.write(_ANSI.sub("", text))
        return len(text)

    def flush(self):
        self._target.flush()


def log_stream():
    """Standard error as a text stream, without ANSI colours off a terminal.

    Estimators print their progress to standard output (skorch's epoch table
    colours its best values); the command line redirects that here, so
    standard output carries only data and a log file gets no escape codes.
    """
    return sys.stderr if wants_colour(sys.stderr) else _PlainWriter(sys.stderr)
