"""Progress of long work: a tqdm bar on a terminal, plain lines with an ETA everywhere else.

A bar is useless in a log file or a batch job's output, and silence for an hour is worse: when
stderr is not a terminal, :func:`progress_bar` prints one plain line every ``interval`` seconds
(30 by default, so at least one a minute even when a single item takes longer) from a background
thread, e.g.::

    prepare: 4120/9848 videos (42%), elapsed 03:10, ETA 04:23

and a last line when the work ends, if it printed any before (short work prints nothing).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import IO, Any, Protocol, TypeVar

from tqdm.auto import tqdm

LINE_SECONDS = 30.0
Item = TypeVar("Item")


class Progress(Protocol):
    """What :func:`progress_bar` returns: a tqdm bar or :class:`PlainLines`."""

    def update(self, n: int = 1) -> Any: ...

    def set_postfix_str(self, text: str) -> Any: ...

    def close(self) -> None: ...

    def __enter__(self) -> Progress: ...

    def __exit__(self, *exc: Any) -> Any: ...


class PlainLines:
    """A tqdm-like counter that prints a plain line every ``interval`` seconds (see the module docstring)."""

    def __init__(self, total: int | None, desc: str, unit: str, stream: IO, interval: float) -> None:
        self.total, self.desc, self.unit, self.stream, self.interval = total, desc, unit, stream, interval
        self.n = 0
        self.postfix = ""
        self.lines = 0
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"progress {desc}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._print()

    def line(self) -> str:
        """The current line, e.g. ``"prepare: 12/40 videos (30%), elapsed 00:31, ETA 01:12"``."""
        elapsed = time.monotonic() - self.started
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        text = f"{self.desc}: {done} {self.unit}"
        if self.total:
            text += f" ({100 * self.n / self.total:.0f}%)"
        text += f", elapsed {tqdm.format_interval(elapsed)}"
        if self.total and self.n:
            text += f", ETA {tqdm.format_interval(elapsed / self.n * max(self.total - self.n, 0))}"
        return text + (f", {self.postfix}" if self.postfix else "")

    def _print(self) -> None:
        print(self.line(), file=self.stream, flush=True)
        self.lines += 1

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        if self.lines:
            self._print()

    def __enter__(self) -> PlainLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(
    total: int | None = None,
    *,
    desc: str,
    unit: str = "it",
    enabled: bool | None = None,
    leave: bool = True,
    stream: IO | None = None,
    interval: float | None = None,
) -> Progress:
    """A progress counter with ``update(n)``, ``set_postfix_str(text)`` and ``close()`` (also a context manager).

    Args:
        total: the number of items (None when unknown: no percentage, no ETA).
        desc, unit: what is counted, e.g. ``"prepare"``, ``"videos"``.
        enabled: False shows nothing; True or None show a tqdm bar when ``stream`` is a terminal and
            plain lines otherwise.
        leave: keep the bar on the terminal when done (tqdm's ``leave``).
        stream: where to write (default stderr).
        interval: seconds between plain lines (default :data:`LINE_SECONDS`).
    """
    stream = stream or sys.stderr
    if enabled is False:
        return tqdm(total=total, disable=True)
    if getattr(stream, "isatty", lambda: False)():
        return tqdm(total=total, desc=desc, unit=unit, leave=leave, file=stream, dynamic_ncols=True)
    return PlainLines(total, desc, unit, stream, LINE_SECONDS if interval is None else interval)


def track(
    items: Iterable[Item],
    *,
    desc: str,
    total: int | None = None,
    unit: str = "it",
    enabled: bool | None = None,
    leave: bool = True,
    postfix: Callable[[], str] | None = None,
) -> Iterator[Item]:
    """Iterate over ``items`` with a :func:`progress_bar`; ``total`` defaults to ``len(items)``.

    ``postfix``, a callable of no argument returning a string, is shown after each item
    (e.g. the running loss).
    """
    if total is None and isinstance(items, Sized):
        total = len(items)
    with progress_bar(total, desc=desc, unit=unit, enabled=enabled, leave=leave) as bar:
        for item in items:
            yield item
            bar.update()
            if postfix is not None:
                bar.set_postfix_str(postfix())
