"""The command line: parses flags into a config, calls the library, prints results and errors.

``latentlapse train …`` (also ``latentlapse …`` and ``python main.py …``) is the guide's main
job; ``simulate``, ``animate``, ``compare``, ``visualize``, ``predict`` and ``inspect`` are the
other subcommands. Heavy libraries are imported only once a command runs, so ``--help`` and argument
errors answer at once. Exit codes: 0 success, 1 bad input or failed run, 2 usage, 130 interrupt.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Sequence

from latentlapse import __version__
from latentlapse.config import (
    ALPHA_MODES,
    DEVICES,
    MISSING_POLICIES,
    MODELS,
    SAMPLERS,
    VIZ_METHODS,
    TrainConfig,
    VizConfig,
)
from latentlapse.errors import LatentlapseError, UsageError

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


def _csv_list(text: str) -> tuple[str, ...]:
    items = tuple(part.strip() for part in text.split(",") if part.strip())
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list of column names")
    return items


def _float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None


# ----------------------------------------------------------------------------------------- train
def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The guide's flags, with its names and defaults, plus the data and run options."""
    d = TrainConfig()
    v = VizConfig()
    g = parser.add_argument_group("training")
    g.add_argument("--classes", type=int, choices=(2, 4, 8), default=d.classes,
                   help="class scheme: 2 (AGN, HM/LM stars), 4 (+ YSO/CV, NS/XRBs) or 8 fine classes")
    g.add_argument("--epochs", type=int, default=d.epochs, help="number of training epochs")
    g.add_argument("--batch_size", type=int, default=d.batch_size, help="sources per optimisation step")
    g.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate (reduced on plateau of validation loss)")
    g.add_argument("--weight_decay", type=float, default=d.weight_decay, help="Adam L2 weight decay")
    g.add_argument("--oversample_target", type=float, default=d.oversample_target,
                   help="oversample each class to this fraction of the majority count with augmented copies "
                        "(0 turns it off, 1.0 balances fully)")
    g.add_argument("--focal_gamma", type=float, default=d.focal_gamma,
                   help="focal-loss focusing parameter (0 is weighted cross-entropy)")
    g.add_argument("--alpha", choices=ALPHA_MODES, default=d.alpha,
                   help="per-class loss weights: auto corrects only the imbalance left after oversampling, "
                        "inverse uses the original training frequencies, none is uniform")
    g.add_argument("--sampler", choices=SAMPLERS, default=d.sampler,
                   help="batch order: shuffle, or balanced (class-balanced sampling with replacement)")
    g.add_argument("--val_split", type=float, default=d.val_split, help="fraction held out, stratified, for validation")
    g.add_argument("--patience", type=int, default=None,
                   help="stop when the checkpoint score (validation balanced accuracy; validation loss for the "
                        "catalogue model) has not improved for N epochs (default: off)")
    g.add_argument("--model", choices=MODELS, default=d.model,
                   help="network: cnn for spectra, mlp for catalogue features; auto picks by data kind")
    g.add_argument("--members", type=int, default=d.members,
                   help="catalogue model (mlp): networks in the deep ensemble; the time-lapse shows member 1's latent space")
    g.add_argument("--device", choices=DEVICES, default=d.device, help="auto uses cuda when available, else cpu")
    g.add_argument("--num_workers", type=int, default=d.num_workers,
                   help="accepted for compatibility; batches come from in-memory tensors, which is faster here")
    g.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch threads for training (default: chosen for the model and how busy the cores are; "
                        "the choice is logged and stored in run_metadata.json)")
    g.add_argument("--seed", type=int, default=d.seed, help="one seed for the split, oversampling, weights and plots")

    g = parser.add_argument_group("data")
    g.add_argument("--data", metavar="FILE", default=None,
                   help="spectra (text, CSV, ECSV, FITS, PHA file or folder) or a catalogue table; "
                        "default: the built-in simulated EPIC-pn set")
    g.add_argument("--label_column", default=None,
                   help="label column of a table (found automatically when it is True_Class, label or class)")
    g.add_argument("--features", type=_csv_list, default=None, metavar="A,B,C",
                   help="catalogue columns to use (default: every numeric column that describes the source: not "
                        "ids, labels, quoted errors, sky position, positional errors, detection significance or "
                        "observation bookkeeping); text flag columns (t/f, y/n) named here are read as 1/0")
    g.add_argument("--exclude", type=_csv_list, default=(), metavar="A,B,C",
                   help="catalogue columns never to use as features")
    g.add_argument("--missing", choices=MISSING_POLICIES, default=d.missing,
                   help="missing catalogue values: indicator (training-split median + a was-missing column), "
                        "median, or drop rows")
    g.add_argument("--placeholder", type=_float_list, default=(), metavar="VALUE[,VALUE]",
                   help="catalogue values that mean 'no measurement': read as missing, also by predict "
                        "(negative values with '=': --placeholder=-99)")

    g = parser.add_argument_group("outputs")
    g.add_argument("--runs_dir", default=d.runs_dir, help="root of the auto-numbered run folders (run_001, run_002, ...)")
    g.add_argument("--out_dir", default=None, help="where checkpoints go (default: inside the run folder)")
    g.add_argument("--save_preds", metavar="FILE", default=None,
                   help="write validation predictions and class probabilities (.csv or .json)")
    g.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue an interrupted run from its last checkpoint, in its own folder")
    g.add_argument("--tensorboard", action="store_true",
                   help="also write the history as scalars and each frame's features as an embedding into "
                        "RUN/tensorboard/ (needs latentlapse[tensorboard])")

    g = parser.add_argument_group("latent-space time-lapse")
    g.add_argument("--visualize_training", action="store_true",
                   help="draw the latent space at milestone epochs (default: disabled)")
    g.add_argument("--viz_every", type=int, default=None, help=f"draw every N epochs (default: {v.every})")
    g.add_argument("--viz_method", choices=VIZ_METHODS, default=None,
                   help=f"2-D projection: tsne, umap (needs latentlapse[umap]) or pca (default: {v.method})")
    g.add_argument("--viz_train_samples", type=int, default=None,
                   help=f"training sources in every frame (default: {v.train_samples})")
    g.add_argument("--viz_val_samples", type=int, default=None,
                   help=f"validation sources in every frame (default: {v.val_samples})")


_VIZ_FLAGS = {
    "viz_every": "every",
    "viz_method": "method",
    "viz_train_samples": "train_samples",
    "viz_val_samples": "val_samples",
}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Build the one frozen TrainConfig; raises UsageError for contradictions."""
    viz_values = {field: getattr(args, flag) for flag, field in _VIZ_FLAGS.items() if getattr(args, flag) is not None}
    if viz_values and not args.visualize_training:
        given = [f"--{flag}" for flag in _VIZ_FLAGS if getattr(args, flag) is not None]
        verb, pronoun = ("takes", "it") if len(given) == 1 else ("take", "them")
        raise UsageError(f"{', '.join(given)} only {verb} effect with --visualize_training; add it or drop {pronoun}")
    viz = VizConfig(enabled=args.visualize_training, **viz_values)
    return TrainConfig(
        classes=args.classes,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        oversample_target=args.oversample_target,
        focal_gamma=args.focal_gamma,
        alpha=args.alpha,
        sampler=args.sampler,
        val_split=args.val_split,
        device=args.device,
        seed=args.seed,
        data=args.data,
        label_column=args.label_column,
        features=args.features,
        missing=args.missing,
        exclude=args.exclude,
        placeholders=args.placeholder,
        runs_dir=args.runs_dir,
        out_dir=args.out_dir,
        save_preds=args.save_preds,
        model=args.model,
        patience=args.patience,
        members=args.members,
        num_workers=args.num_workers,
        threads=args.threads,
        tensorboard=args.tensorboard,
        viz=viz,
    )


def _explicit_train_flags(argv: Sequence[str]) -> list[str]:
    """The long flags a user typed (to refuse mixing --resume with other settings)."""
    return [token.split("=", 1)[0] for token in argv if token.startswith("--")]


def run_train(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from latentlapse import threads
    if args.resume is not None:
        extra = [flag for flag in _explicit_train_flags(argv) if flag not in ("--resume", "--debug", "--quiet")]
        if extra:
            raise UsageError(
                f"--resume continues a run with its stored settings; drop {', '.join(extra)} "
                f"(start a new run to change them)"
            )
        threads.prepare_environment()  # before torch loads: its OpenMP runtime reads the policy once
        from latentlapse import pipeline

        return pipeline.resume(args.resume, announce=_announce).exit_code
    config = config_from_args(args)
    threads.prepare_environment()
    from latentlapse import pipeline

    return pipeline.train(config, announce=_announce).exit_code


def _announce(line: str) -> None:
    """Lines a script may parse (the run folder comes first) go to stdout, flushed at once."""
    print(line, flush=True)


# -------------------------------------------------------------------------------------- simulate
def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="output file: the whitespace text format, or CSV when FILE ends in .csv")
    parser.add_argument("--n", type=int, default=None,
                        help="labelled sources, in the real set's class proportions (default: 2730, as the real set)")
    parser.add_argument("--unlabelled", type=int, default=0, help="unlabelled sources added to the file")
    parser.add_argument("--seed", type=int, default=42, help="random seed")
    parser.add_argument("--plot", metavar="PNG", default=None,
                        help="also draw the class-mean spectra on a log energy axis")
    parser.add_argument("--label_noise", type=float, default=None, metavar="F",
                        help="flip a fraction F (0-0.5) of the labels to another class of the 4-class scheme, "
                             "stratified and seeded; the flips are listed in <out>.label_noise.csv")


def run_simulate(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from latentlapse.data import simulate

    return simulate.run_command(out=args.out, n=args.n, unlabelled=args.unlabelled, seed=args.seed, plot=args.plot,
                                label_noise=args.label_noise)


# --------------------------------------------------------------------------------------- animate
def add_animate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder holding epoch_*.png frames")
    parser.add_argument("--fps", type=float, default=2.0, help="frames per second")
    parser.add_argument("--mp4", action="store_true",
                        help="also write training_evolution.mp4 (needs latentlapse[video])")


def run_animate(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from latentlapse.timelapse import animate

    for path in animate.animate_run(args.run_dir, fps=args.fps, mp4=args.mp4):
        print(path)
    return 0


# --------------------------------------------------------------------------------------- compare
def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a", metavar="RUN_A", help="first run folder")
    parser.add_argument("run_b", metavar="RUN_B", help="second run folder")
    parser.add_argument("--epoch", type=int, default=None,
                        help="epoch to show side by side (default: the last epoch both runs drew)")
    parser.add_argument("--force", action="store_true",
                        help="compare runs trained on different data: curves and scores side by side, labelled as "
                             "different data, maps not aligned")


def run_compare(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from latentlapse.timelapse import compare

    for path in compare.compare_runs(args.run_a, args.run_b, epoch=args.epoch, force=args.force):
        print(path)
    return 0


# ------------------------------------------------------------------------------------- visualize
def add_visualize_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="PATH", help="a checkpoint written by a run (best.pt, last.pt)")
    parser.add_argument("--method", choices=VIZ_METHODS, default="tsne", help="2-D projection")
    parser.add_argument("--data", metavar="FILE", default=None,
                        help="data to show (default: the data and validation split the checkpoint was trained with)")
    parser.add_argument("--out", metavar="DIR", default="visualizations",
                        help="parent folder of the output folder")


def run_visualize(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from latentlapse import inspect_checkpoint

    folder = inspect_checkpoint.visualize_checkpoint(args.checkpoint, method=args.method, data=args.data, out_root=args.out)
    print(folder)
    return 0


# --------------------------------------------------------------------------------------- predict
def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="PATH", help="a checkpoint written by a run")
    parser.add_argument("--data", required=True, metavar="FILE", help="sources to classify (labels, if any, are ignored)")
    parser.add_argument("--out", required=True, metavar="FILE", help="predictions (.csv or .json)")
    parser.add_argument("--batch_size", type=int, default=4096, help="sources per forward pass (bounds memory)")
    add_operating_arguments(parser)


def add_operating_arguments(parser: argparse.ArgumentParser) -> None:
    """--priors and --uncalibrated, shared by predict and evaluate."""
    parser.add_argument("--priors", default="balanced", metavar="train|balanced|A=0.6,B=0.3,...",
                        help="class priors of the sources to classify: balanced (every class equally likely, the "
                             "balanced-accuracy operating point), train (the training set's class frequencies, the "
                             "accuracy operating point), or one value per class")
    parser.add_argument("--uncalibrated", action="store_true",
                        help="use the network's raw probabilities instead of the calibration fitted at the end of the run")


def run_predict(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from latentlapse import predict

    summary = predict.predict_file(args.checkpoint, args.data, args.out, batch_size=args.batch_size,
                                   priors=args.priors, uncalibrated=args.uncalibrated)
    print(summary)
    return 0


# --------------------------------------------------------------------------------------- inspect
def add_inspect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN", help="a run folder (it records every source's training dynamics)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--id", metavar="SRC_ID", default=None,
                      help="one source's history: label, prediction and true-class probability at each frame epoch "
                           "(every epoch without frames), region and suspect rank")
    what.add_argument("--suspects", type=int, metavar="N", default=None,
                      help="the N sources whose training history most doubts their label")


def run_inspect(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from latentlapse.timelapse import inspect_source

    if args.id is not None:
        print(inspect_source.source_text(args.run_dir, args.id))
    else:
        print(inspect_source.suspects_text(args.run_dir, args.suspects))
    return 0


# -------------------------------------------------------------------------------------- evaluate
def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="PATH", help="a checkpoint written by a run (best.pt)")
    parser.add_argument("--data", required=True, metavar="FILE", help="labelled sources to score (a label column is needed)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="folder for evaluation.json, evaluation_report.txt and evaluation.png "
                             "(default: the next free evaluations/eval_NNN)")
    parser.add_argument("--batch_size", type=int, default=4096, help="sources per forward pass (bounds memory)")
    add_operating_arguments(parser)


def run_evaluate(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from latentlapse import evaluate

    if args.batch_size < 1:
        raise UsageError(f"--batch_size must be at least 1, got {args.batch_size}")
    folder, metrics = evaluate.evaluate_file(args.checkpoint, args.data, out=args.out, priors=args.priors,
                                             uncalibrated=args.uncalibrated, batch_size=args.batch_size)
    print(folder)
    print(f"accuracy {metrics['acc']:.4f}, balanced accuracy {metrics['balanced_acc']:.4f}, "
          f"macro-F1 {metrics['macro_f1']:.4f} on {metrics['n_sources']} sources")
    return 0


# -------------------------------------------------------------------------------------------- cv
def add_cv_arguments(parser: argparse.ArgumentParser) -> None:
    add_train_arguments(parser)
    g = parser.add_argument_group("cross-validation")
    g.add_argument("--folds", type=int, default=5, help="number of stratified folds")
    g.add_argument("--baseline", choices=("hgb",), default=None,
                   help="also score scikit-learn's HistGradientBoostingClassifier(class_weight='balanced') "
                        "on the same features and folds")
    g.add_argument("--out", metavar="FILE", default=None, help="also write the results as JSON")


def run_cv(args: argparse.Namespace, argv: Sequence[str]) -> int:
    for flag in ("resume", "save_preds", "out_dir"):
        if getattr(args, flag) is not None:
            raise UsageError(f"--{flag} applies to train, not cv; drop it")
    if args.visualize_training:
        raise UsageError("--visualize_training applies to train, not cv; drop it")
    config = config_from_args(args)
    from latentlapse import cv

    result = cv.cross_validate(config, folds=args.folds, baseline=args.baseline)
    print(cv.summary_text(result))
    if args.out:
        print(cv.write_json(args.out, result))
    return 0


_COMMANDS: dict[str, tuple[Callable, Callable, str]] = {
    "train": (add_train_arguments, run_train, "train a classifier and (optionally) film its latent space"),
    "simulate": (add_simulate_arguments, run_simulate, "write simulated EPIC-pn spectra in the text format"),
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
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors on stderr")
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
        return handler(args, argv)
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
