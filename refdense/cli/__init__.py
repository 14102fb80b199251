"""The ``refdense`` command line: one entry point, one module per subcommand.

Each module in this package defines ``add_parser(subparsers)``, which registers its subcommand and
sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit code).
Modules are imported only when the command line is built, and heavy imports (torch, h5py) happen
inside each ``func`` so that ``refdense --help`` stays fast.

User errors become the error exit (status 2, one line on stderr, no traceback) here, in
:func:`main`, for every command: :class:`CommandError`, ``ValueError`` (``ConfigError``,
``DatasetError``, ``CheckpointError``, ``MissingWeightsError``...), a file that is missing or already
there, a package of the ``course`` extra that is not installed, a training run whose loss became
NaN. A command raises them; it does not convert them itself.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from types import FrameType
from typing import NoReturn

from refdense.extras import MissingExtraError
from refdense.io import DiskFullError

# Order in which the subcommands are listed by ``refdense --help``.
COMMANDS = (
    "synth",
    "inspect",
    "train",
    "evaluate",
    "metrics",
    "probe",
    "demo",
    "ablate",
    "sweep",
    "join_sweeps",
    "study",
    "prepare",
    "decompose",
    "extract_features",
    "weights",
)


# Seconds the clean-up after SIGTERM may take before the process is ended regardless.
SIGTERM_GRACE_SECONDS = 10


class CommandError(Exception):
    """An error the user can fix; printed without a traceback and exits with status 2."""


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions :func:`main` reports as the user's errors (evaluated when one propagates)."""
    errors: tuple[type[BaseException], ...] = (
        CommandError,
        ValueError,
        FileNotFoundError,
        FileExistsError,
        MissingExtraError,
    )
    # The training loop's error: only a process that imported its module can have raised it, and
    # importing it here would load torch for every command.
    result = sys.modules.get("refdense.train.result")
    return errors + ((result.NonFiniteLossError,) if result is not None else ())


def error_message(error: BaseException) -> str:
    """``PATH: reason`` for a file error that names its file, else the error's own message."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return str(error)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="refdense",
        description="RefDense and PAT for dense (multi-label, per-segment) action detection.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"refdense.cli.{name}").add_parser(subparsers)
    return parser


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    # Turn SIGTERM (timeout, kill, a cluster scheduler) into SystemExit so that ``finally`` blocks
    # run and temporary files of interrupted writes are removed. SIGTERM must stop the process
    # whatever it is doing, so the clean-up gets SIGTERM_GRACE_SECONDS: then SIGALRM, whose default
    # action ends the process, stops a clean-up that hangs (threads that do not finish, a lock a
    # library never releases), and a second SIGTERM ends the process at once. What such an end
    # leaves behind (NAME.tmp-<pid> files and folders) is removed by the next run that writes there.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(SIGTERM_GRACE_SECONDS)
    sys.exit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except DiskFullError as error:  # any command that writes; its strerror names the file
        print(f"refdense {args.command}: error: {error.strerror}", file=sys.stderr)
        return 2
    except user_errors() as error:
        print(f"refdense {args.command}: error: {error_message(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"refdense {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
