"""The command line: parses flags into a config, calls the library, prints results and errors.

``latentlapse train …`` (also ``latentlapse …`` and ``python main.py …``) is the guide's main
job; ``simulate``, ``animate``, ``compare``, ``visualize``, ``predict``, ``inspect``,
``evaluate`` and ``cv`` are the other subcommands. This module holds the dispatch; the flags are
in :mod:`latentlapse.xray.cli_train` and :mod:`latentlapse.xray.cli_tools`. Heavy libraries are imported
only once a command runs, so ``--help`` and argument errors answer at once. Exit codes: 0 success, 1 bad input or failed run, 2 usage, 130 interrupt.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable, Sequence

from latentlapse import __version__
from latentlapse.xray.cli_tools import (
    add_animate_arguments,
    add_compare_arguments,
    add_cv_arguments,
    add_evaluate_arguments,
    add_inspect_arguments,
    add_predict_arguments,
    add_simulate_arguments,
    add_visualize_arguments,
    run_animate,
    run_compare,
    run_cv,
    run_evaluate,
    run_inspect,
    run_predict,
    run_simulate,
    run_visualize,
)
from latentlapse.xray.cli_train import add_train_arguments, config_from_args, run_train  # noqa: F401 (cli.config_from_args)
from latentlapse.core.errors import LatentlapseError

PROG = "latentlapse"
SUBCOMMANDS = ("train", "simulate", "animate", "compare", "visualize", "predict", "evaluate", "cv", "inspect")
log = logging.getLogger("latentlapse")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(2)


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" once: not where the help already states its default, and not for
    switches and options whose default is "not given" (False / None), where it says nothing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "(default:" in text or action.default is None or action.default is False:
            return text
        return super()._get_help_string(action)


def _formatter(prog: str) -> argparse.HelpFormatter:
    return _DefaultsFormatter(prog, max_help_position=34, width=100)


_COMMANDS: dict[str, tuple[Callable, Callable, str]] = {
    "train": (add_train_arguments, run_train, "train a classifier and (optionally) film its latent space"),
    "simulate": (add_simulate_arguments, run_simulate, "write simulated EPIC-pn spectra in the text format or CSV"),
    "animate": (add_animate_arguments, run_animate, "rebuild training_animation.gif (and an MP4) of a run"),
    "compare": (add_compare_arguments, run_compare, "the same epoch of two runs side by side"),
    "visualize": (add_visualize_arguments, run_visualize, "post-training view of a saved checkpoint"),
    "predict": (add_predict_arguments, run_predict, "classify sources with a saved checkpoint"),
    "evaluate": (add_evaluate_arguments, run_evaluate, "score a saved checkpoint on a labelled file"),
    "cv": (add_cv_arguments, run_cv, "stratified k-fold cross-validation of the train settings"),
    "inspect": (add_inspect_arguments, run_inspect, "one source's training history, or the most suspect labels"),
}


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors on stderr")


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The top-level parser: lists the commands (each command parses its own flags)."""
    parser = _Parser(
        prog=prog,
        description="Train a classifier of X-ray sources from their spectra and watch its latent space learn. "
                    "Without a command, 'train' is assumed: latentlapse --classes 4 --visualize_training",
        formatter_class=_formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, _, summary) in _COMMANDS.items():
        sub.add_parser(name, help=summary)
    return parser


def command_parser(command: str, prog: str) -> argparse.ArgumentParser:
    """The parser of one command, e.g. ``train`` (which is also ``python main.py``)."""
    add_arguments, _, summary = _COMMANDS[command]
    parser = _Parser(prog=prog, description=summary, formatter_class=_formatter)
    add_arguments(parser)
    _add_common(parser)
    return parser


def _configure_logging(debug: bool, quiet: bool) -> None:
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    handler = _ProgressAwareHandler(sys.stderr)
    handler.setFormatter(_MessageFormatter())
    root = logging.getLogger("latentlapse")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class _ProgressAwareHandler(logging.StreamHandler):
    """Writes log lines above a running tqdm progress bar instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # logging must never take the program down
            self.handleError(record)


class _MessageFormatter(logging.Formatter):
    """Plain messages; warnings and errors say so."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.ERROR:
            return f"error: {message}"
        if record.levelno >= logging.WARNING:
            return f"warning: {message}"
        return message


def _dispatch(command: str, prog: str, argv: list[str]) -> int:
    args = command_parser(command, prog).parse_args(argv)
    _configure_logging(args.debug, args.quiet)
    handler = _COMMANDS[command][1]
    try:
        code = handler(args, argv)
        sys.stdout.flush()  # a reader that left early shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return 1
    except LatentlapseError as exc:
        if args.debug:
            log.exception("%s failed", command)
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``latentlapse`` console script (and ``python -m latentlapse``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "--version"):
        build_parser().parse_args(argv or ["--help"])
        return 0
    command, rest = (argv[0], argv[1:]) if argv[0] in SUBCOMMANDS else ("train", argv)
    return _dispatch(command, f"{PROG} {command}", rest)


def train_main(argv: Sequence[str] | None = None, prog: str = "main.py") -> int:
    """Entry point of ``python main.py``: the guide's command line, i.e. ``latentlapse train``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return _dispatch("train", prog, argv)


def _silence_stdout() -> None:
    """Point stdout at devnull once its reader (``| head``) has closed the pipe, so that the
    interpreter's last flush does not fail again (the Python docs' SIGPIPE recipe)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
