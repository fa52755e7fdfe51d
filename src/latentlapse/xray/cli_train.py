"""The ``train`` command's flags: the guide's names and defaults, turned into one frozen
:class:`~latentlapse.xray.config.TrainConfig`, and the hand-over to a new or resumed run.

``cv`` takes the same flags, so :mod:`latentlapse.xray.cli_tools` builds on these too.
"""

from __future__ import annotations

import argparse
from typing import Callable, Sequence

from latentlapse.xray.config import (
    ALPHA_MODES,
    DEVICES,
    MISSING_POLICIES,
    MODEL_DEFAULTS,
    MODELS,
    OPTIMIZERS,
    SAMPLERS,
    SCHEDULES,
    VIZ_METHODS,
    TrainConfig,
    VizConfig,
)
from latentlapse.core.errors import MissingExtraError, UsageError, require_extra


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



def add_train_arguments(parser: argparse.ArgumentParser, run_folder: bool = True) -> None:
    """The guide's flags, with its names and defaults, plus the data and run options; without
    ``run_folder`` (``cv``, which writes none) the outputs and time-lapse flags are still parsed, to
    be refused with a line that says why, but left out of ``--help``."""

    def shown(text: str) -> str:
        return text if run_folder else argparse.SUPPRESS

    _add_training_flags(parser.add_argument_group("training"))
    _add_data_flags(parser.add_argument_group("data"))
    _add_output_flags(parser.add_argument_group("outputs"), shown)
    _add_timelapse_flags(parser.add_argument_group("latent-space time-lapse"), shown)


def _add_training_flags(g) -> None:
    """The model, loss, optimiser and loop flags; the per-model defaults are named in the help."""
    d = TrainConfig()
    g.add_argument("--classes", type=int, choices=(2, 4, 8), default=d.classes,
                   help="class scheme: 2 (AGN, HM/LM stars), 4 (+ YSO/CV, NS/XRBs) or 8 fine classes")
    cnn, mlp = MODEL_DEFAULTS["cnn"], MODEL_DEFAULTS["mlp"]

    def per_model(name: str) -> str:
        return f"(default: {cnn[name]:g} for the spectra cnn, {mlp[name]:g} for the catalogue mlp)"

    g.add_argument("--epochs", type=int, default=None, help="number of training epochs " + per_model("epochs"))
    g.add_argument("--lr", type=float, default=None,
                   help="learning rate: Adam's, reduced on plateaus of validation loss (cnn), or the one-cycle "
                        "peak (mlp) " + per_model("lr"))
    g.add_argument("--weight_decay", type=float, default=None,
                   help="weight decay (L2 under adam, decoupled under adamw) " + per_model("weight_decay"))
    g.add_argument("--oversample_target", type=float, default=None,
                   help="oversample each class to this fraction of the majority count with augmented copies "
                        "(0 turns it off, 1.0 balances fully) " + per_model("oversample_target"))
    g.add_argument("--focal_gamma", type=float, default=None,
                   help="focal-loss focusing parameter (0 is weighted cross-entropy) " + per_model("focal_gamma"))
    g.add_argument("--alpha", choices=ALPHA_MODES, default=None,
                   help="per-class loss weights: auto corrects only the imbalance left after oversampling, "
                        "inverse uses the original training frequencies, sqrt the square root of auto's weights (of "
                        "the frequencies left after oversampling), none is uniform "
                        f"(default: {cnn['alpha']} for the cnn, {mlp['alpha']} for the mlp)")
    g.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                   help=f"adam or adamw (decoupled weight decay) (default: {cnn['optimizer']} for the cnn, "
                        f"{mlp['optimizer']} for the mlp)")
    g.add_argument("--schedule", choices=SCHEDULES, default=None,
                   help="plateau: lr halved when validation loss stalls, best epoch kept; onecycle: warm-up to "
                        "--lr and annealing to ~0 over all epochs, last epoch kept "
                        f"(default: {cnn['schedule']} for the cnn, {mlp['schedule']} for the mlp)")
    g.add_argument("--batch_size", type=int, default=d.batch_size, help="sources per optimisation step")
    g.add_argument("--sampler", choices=SAMPLERS, default=d.sampler,
                   help="batch order: shuffle, or balanced (class-balanced sampling with replacement)")
    g.add_argument("--val_split", type=float, default=d.val_split, help="fraction held out, stratified, for validation")
    g.add_argument("--patience", type=int, default=None,
                   help="stop when the checkpoint score (validation balanced accuracy; validation loss for the "
                        "catalogue model) has not improved for N epochs, under the plateau schedule (default: off)")
    g.add_argument("--model", choices=MODELS, default=d.model,
                   help="network: cnn for spectra, mlp for catalogue features; auto picks by data kind")
    g.add_argument("--members", type=int, default=d.members,
                   help="catalogue model (mlp): networks in the deep ensemble; the time-lapse shows member 1's latent space")
    g.add_argument("--refit", action=argparse.BooleanOptionalAction, default=None,
                   help="once the validation split has scored and calibrated the model, train it again on every "
                        "labelled source (the validation split included; in cv, every training row of the fold), "
                        "same settings and epochs: that model is best.pt, and what cv scores; needs --schedule "
                        "onecycle (default: on for the catalogue mlp, off for the cnn)")
    g.add_argument("--device", choices=DEVICES, default=d.device, help="auto uses cuda when available, else cpu")
    g.add_argument("--num_workers", type=int, default=d.num_workers,
                   help="accepted for compatibility; batches come from in-memory tensors, which is faster here")
    g.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch threads for training (default: chosen for the model and how busy the cores are; "
                        "the choice is logged and stored in run_metadata.json)")
    g.add_argument("--seed", type=int, default=d.seed, help="one seed for the split, oversampling, weights and plots")


def _add_data_flags(g) -> None:
    """The data file and the catalogue table options."""
    d = TrainConfig()
    g.add_argument("--data", metavar="FILE", default=None,
                   help="spectra (text, CSV, ECSV, FITS, PHA file or folder) or a catalogue table; "
                        "default: the built-in simulated EPIC-pn set")
    g.add_argument("--label_column", default=None,
                   help="label column of a table (found automatically when it is True_Class, label or class)")
    g.add_argument("--features", type=_csv_list, default=None, metavar="A,B,C",
                   help="catalogue columns to use (default: every numeric or flag column that describes the source: "
                        "not ids, labels, quoted errors, sky position, positional errors, detection significance or "
                        "observation bookkeeping); flag columns (t/f, y/n, booleans) are read as 1/0")
    g.add_argument("--exclude", type=_csv_list, default=(), metavar="A,B,C",
                   help="catalogue columns never to use as features")
    g.add_argument("--missing", choices=MISSING_POLICIES, default=d.missing,
                   help="missing catalogue values: indicator (training-split median + a was-missing column), "
                        "median, or drop rows")
    g.add_argument("--placeholder", type=_float_list, default=(), metavar="VALUE[,VALUE]",
                   help="catalogue values that mean 'no measurement': read as missing, also by predict "
                        "(negative values with '=': --placeholder=-99)")


def _add_output_flags(g, shown: Callable[[str], str]) -> None:
    """Where the run's files go, ``--resume`` and TensorBoard (their help through ``shown``)."""
    d = TrainConfig()
    g.add_argument("--runs_dir", default=d.runs_dir,
                   help=shown("root of the auto-numbered run folders (run_001, run_002, ...)"))
    g.add_argument("--out_dir", default=None, help=shown("where checkpoints go (default: inside the run folder)"))
    g.add_argument("--save_preds", metavar="FILE", default=None,
                   help=shown("write validation predictions and class probabilities (.csv, .json or .fits, in a "
                              "folder that exists)"))
    g.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help=shown("continue an interrupted run from its last checkpoint, in its own folder"))
    g.add_argument("--tensorboard", action="store_true",
                   help=shown("also write the history as scalars and each frame's features as an embedding into "
                              "RUN/tensorboard/ (needs latentlapse[tensorboard])"))


def _add_timelapse_flags(g, shown: Callable[[str], str]) -> None:
    """Whether and how the latent space is filmed (their help through ``shown``)."""
    v = VizConfig()
    g.add_argument("--visualize_training", action="store_true",
                   help=shown("draw the latent space at milestone epochs (default: disabled)"))
    g.add_argument("--viz_every", type=int, default=None, help=shown(f"draw every N epochs (default: {v.every})"))
    g.add_argument("--viz_method", choices=VIZ_METHODS, default=None,
                   help=shown(f"2-D projection: tsne, umap (needs latentlapse[umap]) or pca (default: {v.method})"))
    g.add_argument("--viz_train_samples", type=int, default=None,
                   help=shown(f"training sources in every frame (default: {v.train_samples})"))
    g.add_argument("--viz_val_samples", type=int, default=None,
                   help=shown(f"validation sources in every frame (default: {v.val_samples})"))


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
    if args.tensorboard:
        try:
            require_extra("tensorboard", "tensorboard", "--tensorboard")
        except MissingExtraError as exc:
            raise UsageError(f"{exc} (or drop --tensorboard)") from None
    if args.save_preds:
        from latentlapse.core import prediction_writer

        prediction_writer.check_destination(args.save_preds, "--save_preds")
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
        optimizer=args.optimizer,
        schedule=args.schedule,
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
        refit=args.refit,
        num_workers=args.num_workers,
        threads=args.threads,
        tensorboard=args.tensorboard,
        viz=viz,
    )


def _explicit_train_flags(argv: Sequence[str]) -> list[str]:
    """The long flags a user typed (to refuse mixing --resume with other settings)."""
    return [token.split("=", 1)[0] for token in argv if token.startswith("--")]


def run_train(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from latentlapse.core import threads
    if args.resume is not None:
        extra = [flag for flag in _explicit_train_flags(argv) if flag not in ("--resume", "--debug", "--quiet")]
        if extra:
            raise UsageError(
                f"--resume continues a run with its stored settings; drop {', '.join(extra)} "
                f"(start a new run to change them)"
            )
        threads.prepare_environment()  # before torch loads: its OpenMP runtime reads the policy once
        from latentlapse.xray import pipeline

        return pipeline.resume(args.resume, announce=_announce).exit_code
    config = config_from_args(args)
    threads.prepare_environment()
    from latentlapse.xray import pipeline

    return pipeline.train(config, announce=_announce).exit_code


def _announce(line: str) -> None:
    """Lines a script may parse (the run folder comes first) go to stdout, flushed at once."""
    print(line, flush=True)

