"""Command-line options that several subcommands share."""

from __future__ import annotations

import argparse


def add_overrides_option(parser: argparse.ArgumentParser, help: str) -> None:
    """``--set KEY=VALUE`` (repeatable), collected in ``args.overrides`` (a list of strings)."""
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides", help=help
    )
