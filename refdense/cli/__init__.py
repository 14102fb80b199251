"""The ``refdense`` command line: one entry point, one module per subcommand.

Each module in this package defines ``add_parser(subparsers)``, which registers its subcommand and
sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit code).
Modules are imported only when the command line is built, and heavy imports (torch, h5py) happen
inside each ``func`` so that ``refdense --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from types import FrameType
from typing import NoReturn

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
    "prepare",
    "decompose",
    "extract_features",
    "weights",
)


# Seconds the clean-up after SIGTERM may take before the process is ended regardless.
SIGTERM_GRACE_SECONDS = 10


class CommandError(Exception):
    """An error the user can fix; printed without a traceback and exits with status 2."""


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
    except CommandError as error:
        print(f"refdense {args.command}: error: {error}", file=sys.stderr)
        return 2
    except DiskFullError as error:  # any command that writes
        print(f"refdense {args.command}: error: {error.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"refdense {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
