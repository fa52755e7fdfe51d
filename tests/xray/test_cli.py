"""Command-line parsing: the guide's flags, their defaults, and one-line usage errors (exit 2)."""

import re
import subprocess
import sys

import pytest

from latentlapse.core.errors import UsageError
from latentlapse.xray import cli
from latentlapse.xray.config import TrainConfig


def _config(*argv):
    args = cli.command_parser("train", "main.py").parse_args(list(argv))
    return cli.config_from_args(args)


def test_defaults_match_the_issue():
    c = _config().for_model("cnn")  # the spectra model's defaults; the catalogue model has its own
    assert (c.classes, c.epochs, c.batch_size, c.lr, c.weight_decay) == (4, 100, 64, 1e-3, 1e-4)
    assert (c.oversample_target, c.focal_gamma, c.val_split, c.seed) == (0.7, 2.0, 0.2, 42)
    assert (c.alpha, c.optimizer, c.schedule) == ("auto", "adam", "plateau")
    assert (c.runs_dir, c.model, c.patience, c.device) == ("training_feature_visualizations", "auto", None, "auto")
    assert c.viz.enabled is False and c.viz.every == 10 and c.viz.method == "tsne"
    assert (c.viz.train_samples, c.viz.val_samples) == (500, 300)


def test_model_defaults_fill_only_what_was_not_given():
    unset = _config("--epochs", "7")
    assert (unset.epochs, unset.lr, unset.schedule) == (7, None, None)
    mlp = unset.for_model("mlp")
    assert (mlp.epochs, mlp.lr, mlp.weight_decay, mlp.oversample_target, mlp.focal_gamma) == (7, 3e-3, 1e-3, 0.0, 0.0)
    assert (mlp.alpha, mlp.optimizer, mlp.schedule) == ("sqrt", "adamw", "onecycle")
    kept = _config("--schedule", "plateau", "--oversample_target", "1").for_model("mlp")
    assert (kept.schedule, kept.oversample_target, kept.optimizer) == ("plateau", 1.0, "adamw")


def test_patience_needs_the_plateau_schedule():
    with pytest.raises(UsageError, match="--patience"):
        _config("--patience", "3").for_model("mlp")
    assert _config("--patience", "3").for_model("cnn").patience == 3


def test_configs_stored_before_the_schedule_existed_resume_as_they_trained():
    stored = _config("--data", "x.csv").for_model("mlp").to_dict()
    del stored["schedule"], stored["optimizer"]
    old = TrainConfig.from_dict(stored)
    assert (old.schedule, old.optimizer) == ("plateau", "adam")


def test_guide_command_line_parses():
    c = _config("--classes", "4", "--epochs", "200", "--oversample_target", "1.0", "--focal_gamma", "3.0",
                "--visualize_training", "--viz_every", "25", "--viz_method", "umap")
    assert (c.epochs, c.oversample_target, c.focal_gamma) == (200, 1.0, 3.0)
    assert (c.viz.enabled, c.viz.every, c.viz.method) == (True, 25, "umap")


def test_config_round_trips_through_its_dict():
    c = _config("--visualize_training", "--viz_every", "5", "--features", "Fs,Fm", "--data", "x.csv")
    assert TrainConfig.from_dict(c.to_dict()) == c


def _usage_error(capsys, *argv):
    code = cli.train_main(list(argv))
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--epochs", "0"], "--epochs must be at least 1, got 0"),
        (["--oversample_target", "1.5"], r"--oversample_target must be between 0 \(off\) and 1.0"),
        (["--val_split", "1"], "--val_split must be between 0 and 1"),
        (["--lr", "-1"], "--lr must be positive"),
        (["--batch_size", "0"], "--batch_size must be at least 1"),
        (["--focal_gamma", "-2"], "--focal_gamma must be between 0 and 10"),
        (["--patience", "0"], "--patience must be at least 1"),
        (["--visualize_training", "--viz_every", "0"], "--viz_every must be at least 1"),
        (["--visualize_training", "--viz_train_samples", "3"], "--viz_train_samples must be at least 10"),
        (["--viz_every", "5"], "--viz_every only takes effect with --visualize_training; add it or drop it"),
        (["--viz_every", "5", "--viz_method", "pca"],
         "--viz_every, --viz_method only take effect with --visualize_training; add it or drop them"),
        (["--label_column", "cls"], "--label_column applies to --data tables"),
        (["--seed", "-1"], "--seed must be a non-negative integer"),
        (["--threads", "0"], "--threads must be between 1 and 1024, got 0"),
    ],
)
def test_out_of_range_and_contradictory_values_exit_2_with_one_line(capsys, tmp_path, argv, message):
    err = _usage_error(capsys, *argv, "--runs_dir", str(tmp_path / "runs"))
    assert re.search(message, err), err
    assert not (tmp_path / "runs").exists()


def test_argparse_errors_are_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.train_main(["--classes", "5"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice: 5" in err


def test_resume_refuses_other_flags(capsys, tmp_path):
    code = cli.train_main(["--resume", str(tmp_path), "--epochs", "5"])
    assert code == 2
    assert "--resume continues a run with its stored settings; drop --epochs" in capsys.readouterr().err


def test_help_lists_every_guide_flag_without_heavy_imports():
    out = subprocess.run(
        [sys.executable, "-c",
         "import sys; from latentlapse.xray.cli import train_main\n"
         "try:\n    train_main(['--help'])\nexcept SystemExit:\n    pass\n"
         "print('HEAVY', sorted(m for m in ('torch', 'matplotlib', 'openTSNE', 'umap', 'sklearn') if m in sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout
    for flag in ("--classes", "--epochs", "--oversample_target", "--focal_gamma", "--visualize_training",
                 "--viz_every", "--viz_method", "--batch_size", "--lr", "--seed", "--runs_dir", "--save_preds"):
        assert flag in out
    assert out.strip().endswith("HEAVY []")


@pytest.mark.parametrize("command", cli.SUBCOMMANDS)
def test_help_states_each_default_once(capsys, command):
    """Each option's help says its default at most once, and never "(default: None)" or
    "(default: False)" next to the sentence that already says what not giving it means."""
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = capsys.readouterr().out
    entries = re.split(r"\n  (?=-)", text)
    options = [" ".join(entry.split()) for entry in entries[1:]]
    assert options, text
    for option in options:
        assert option.count("(default:") <= 1, option
        assert "(default: None)" not in option and "(default: False)" not in option, option
    if command == "train":
        patience = next(o for o in options if o.startswith("--patience"))
        assert patience.endswith("(default: off)"), patience
        visualize = next(o for o in options if o.startswith("--visualize_training"))
        assert visualize.endswith("(default: disabled)"), visualize
        assert any(o.startswith("--epochs") and o.endswith("(default: 100 for the spectra cnn, 40 for the catalogue mlp)") for o in options)


def test_top_level_help_and_default_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in cli.SUBCOMMANDS:
        assert command in out
