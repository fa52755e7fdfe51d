"""The commands besides ``train``: simulate, animate, compare, visualize, predict, inspect,
evaluate and cv. Each has its flags and a runner that imports its library only when it runs.
"""

from __future__ import annotations

import argparse
from typing import Sequence

from latentlapse.xray.cli_train import add_train_arguments, config_from_args
from latentlapse.xray.config import VIZ_METHODS
from latentlapse.core.errors import UsageError


# -------------------------------------------------------------------------------------- simulate
def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="output file: the whitespace text format (.txt or .dat), or CSV (.csv)")
    parser.add_argument("--n", type=int, default=None,
                        help="labelled sources, in the real set's class proportions except that every class keeps at least "
                             "2 when N >= 18 (default: 2730, as the real set)")
    parser.add_argument("--unlabelled", type=int, default=0, help="unlabelled sources added to the file")
    parser.add_argument("--seed", type=int, default=42, help="random seed")
    parser.add_argument("--plot", metavar="PNG", default=None,
                        help="also draw the class-mean spectra on a log energy axis")
    parser.add_argument("--label_noise", type=float, default=None, metavar="F",
                        help="flip a fraction F (0-0.5) of the labels to another class of the 4-class scheme, "
                             "stratified and seeded; the flips are listed in <out>.label_noise.csv")


def run_simulate(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from latentlapse.xray.data import simulate

    return simulate.run_command(out=args.out, n=args.n, unlabelled=args.unlabelled, seed=args.seed, plot=args.plot,
                                label_noise=args.label_noise)


# --------------------------------------------------------------------------------------- animate
def add_animate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder holding epoch_*.png frames")
    parser.add_argument("--fps", type=float, default=2.0, help="frames per second")
    parser.add_argument("--mp4", action="store_true",
                        help="also write training_evolution.mp4 (needs latentlapse[video])")


def run_animate(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from latentlapse.core.timelapse import animate

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
    from latentlapse.core.timelapse import compare

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
    from latentlapse.xray import inspect_checkpoint

    folder = inspect_checkpoint.visualize_checkpoint(args.checkpoint, method=args.method, data=args.data, out_root=args.out)
    print(folder)
    return 0


# --------------------------------------------------------------------------------------- predict
def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="PATH", help="a checkpoint written by a run")
    parser.add_argument("--data", required=True, metavar="FILE", help="sources to classify (labels, if any, are ignored)")
    parser.add_argument("--out", required=True, metavar="FILE", help="predictions (.csv, .json or .fits)")
    parser.add_argument("--batch_size", type=int, default=256,
                        help="sources per forward pass (256 keeps the network's activations in cache)")
    add_operating_arguments(parser)


def add_operating_arguments(parser: argparse.ArgumentParser) -> None:
    """--priors and --uncalibrated, shared by predict and evaluate."""
    parser.add_argument("--priors", default="balanced", metavar="train|balanced|model|A=0.6,B=0.3,...",
                        help="class priors of the sources to classify: balanced (every class equally likely, the "
                             "balanced-accuracy operating point), train (the training set's class frequencies, the "
                             "accuracy operating point), model (no re-weighting: the probabilities as the model gives "
                             "them), or one value per class")
    parser.add_argument("--uncalibrated", action="store_true",
                        help="skip the calibration fitted at the end of the run; --priors still re-weights, from the "
                             "priors the raw network was trained to (with --priors model: the raw network's output)")


def run_predict(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from latentlapse.xray import predict

    summary = predict.predict_file(args.checkpoint, args.data, args.out, batch_size=args.batch_size,
                                   priors=args.priors, uncalibrated=args.uncalibrated)
    if summary:  # under torchrun, rank 0 alone reports
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
    from latentlapse.core.timelapse import inspect_source

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
                        help="folder for evaluation.json, evaluation_report.txt and evaluation.png; an earlier "
                             "evaluation there is replaced, with a warning (default: the next free "
                             "evaluations/eval_NNN)")
    parser.add_argument("--batch_size", type=int, default=256,
                        help="sources per forward pass (256 keeps the network's activations in cache)")
    add_operating_arguments(parser)


def run_evaluate(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from latentlapse.xray import evaluate

    if args.batch_size < 1:
        raise UsageError(f"--batch_size must be at least 1, got {args.batch_size}")
    folder, metrics = evaluate.evaluate_file(args.checkpoint, args.data, out=args.out, priors=args.priors,
                                             uncalibrated=args.uncalibrated, batch_size=args.batch_size)
    print(folder)
    point = f"{metrics['priors']} priors, {'calibrated' if metrics['calibrated'] else 'uncalibrated'}"
    print(f"accuracy {metrics['acc']:.4f}, balanced accuracy {metrics['balanced_acc']:.4f}, "
          f"macro-F1 {metrics['macro_f1']:.4f} on {metrics['n_sources']} sources ({point})")
    return 0


# -------------------------------------------------------------------------------------------- cv
def add_cv_arguments(parser: argparse.ArgumentParser) -> None:
    add_train_arguments(parser, run_folder=False)
    g = parser.add_argument_group("cross-validation")
    g.add_argument("--folds", type=int, default=5, help="number of stratified folds")
    g.add_argument("--baseline", choices=("hgb",), default=None,
                   help="also score scikit-learn's HistGradientBoostingClassifier(class_weight='balanced') "
                        "on the same features and folds")
    g.add_argument("--split_seed", type=int, default=None, metavar="N",
                   help="draw the folds from seed N instead of --seed, so that runs with different --seed "
                        "(or settings) are scored on the same folds")
    g.add_argument("--out", metavar="FILE", default=None, help="also write the results as JSON")


# cv writes no run folder: the flags about one are refused rather than ignored
_RUN_FOLDER_FLAGS = ("resume", "save_preds", "out_dir", "viz_every", "viz_method", "viz_train_samples", "viz_val_samples")


def run_cv(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from latentlapse.xray.config import TrainConfig

    given = [flag for flag in _RUN_FOLDER_FLAGS if getattr(args, flag) is not None]
    given += [flag for flag in ("visualize_training", "tensorboard") if getattr(args, flag)]
    if args.runs_dir != TrainConfig.runs_dir:
        given.append("runs_dir")
    if given:
        raise UsageError(f"--{given[0]} applies to train, not cv (cv writes no run folder); drop it")
    if args.out:
        from latentlapse.core import atomic

        atomic.check_destination(args.out)
    config = config_from_args(args)
    from latentlapse.xray import cv

    result = cv.cross_validate(config, folds=args.folds, baseline=args.baseline, split_seed=args.split_seed)
    print(cv.summary_text(result))
    if args.out:
        print(cv.write_json(args.out, result))
    return 0

