"""latentlapse cv: stratified, disjoint folds; the baseline beside the model; bad input exits 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latentlapse.xray import cli, cv
from latentlapse.core.errors import UsageError

from test_evaluate import write_catalog


def test_folds_are_stratified_disjoint_and_cover_every_row():
    y = np.repeat([0, 1, 2, 3], [50, 25, 15, 10])
    splits = cv.fold_indices(y, 5, seed=3)
    tests = [test for _, test in splits]
    assert np.array_equal(np.sort(np.concatenate(tests)), np.arange(len(y)))
    for train, test in splits:
        assert not set(train) & set(test) and len(train) + len(test) == len(y)
        assert np.bincount(y[test], minlength=4).tolist() == [10, 5, 3, 2]
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, cv.fold_indices(y, 5, seed=3)))


def test_too_few_sources_in_a_class_is_a_usage_error():
    with pytest.raises(UsageError, match="class 1 has only 3 sources, fewer than the folds; use --folds 3"):
        cv.fold_indices(np.array([0] * 20 + [1] * 3), 5, seed=0)
    with pytest.raises(UsageError, match="--folds 5: CV has only 3 sources"):  # named, where the names are known
        cv.fold_indices(np.array([0] * 20 + [1] * 3), 5, seed=0, class_names=["AGN", "CV"])


def test_cv_command_prints_model_and_baseline(tmp_path, capsys):
    data = write_catalog(tmp_path / "cat.csv", n=100)
    out = tmp_path / "cv.json"
    code = cli.main(["cv", "--data", str(data), "--folds", "2", "--epochs", "2", "--batch_size", "32",
                     "--baseline", "hgb", "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "2-fold stratified cross-validation" in printed and "hgb" in printed and "±" in printed
    result = json.loads(out.read_text())
    ours, hgb = result["models"]["latentlapse"], result["models"]["hgb"]
    assert len(ours["folds"]) == len(hgb["folds"]) == 2
    accs = [f["acc"] for f in ours["folds"]]
    assert ours["summary"]["acc"]["mean"] == pytest.approx(np.mean(accs))
    assert ours["summary"]["acc"]["std"] == pytest.approx(np.std(accs))
    assert 0 <= ours["summary"]["ece_calibrated"]["mean"] <= 1
    pooled = ours["summary"]["ece_pooled"]  # every source scored once by the fold that held it out
    assert 0 <= pooled["calibrated"] <= 1 and 0 < pooled["floor"] < ours["summary"]["ece_floor"]["mean"]


@pytest.mark.parametrize("flags, message", [
    (["--folds", "50"], "fewer than the folds"),
    (["--baseline", "xgb"], "invalid choice: 'xgb'"),
    (["--tensorboard"], "--tensorboard applies to train, not cv"),
    (["--runs_dir", "elsewhere"], "--runs_dir applies to train, not cv"),
    (["--viz_every", "3"], "--viz_every applies to train, not cv"),
    (["--out", "no_such_folder/cv.json"], "the folder no_such_folder does not exist"),
    (["--out", "."], "is a folder"),
])
def test_cv_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, flags, message):
    monkeypatch.chdir(tmp_path)
    data = write_catalog(tmp_path / "cat.csv", n=100)
    try:
        code = cli.main(["cv", "--data", str(data), "--epochs", "1", *flags])
    except SystemExit as stop:  # argparse's own usage errors
        code = stop.code
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert "fold 1/" not in captured.out + captured.err  # refused before any fold trained
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.csv"]


def test_split_seed_puts_different_model_seeds_on_the_same_folds(tmp_path, capsys):
    data = write_catalog(tmp_path / "cat.csv", n=100)
    results = {}
    for seed, split_seed in ((1, 7), (2, 7), (2, None)):
        out = tmp_path / f"cv_{seed}_{split_seed}.json"
        flags = ["--split_seed", str(split_seed)] if split_seed is not None else []
        code = cli.main(["cv", "--data", str(data), "--folds", "2", "--epochs", "1", "--batch_size", "32",
                         "--baseline", "hgb", "--seed", str(seed), *flags, "--out", str(out), "--quiet"])
        assert code == 0
        results[seed, split_seed] = json.loads(out.read_text())
    printed = capsys.readouterr().out
    assert printed.count("seed 1, folds from seed 7;") == 1 and printed.count("seed 2, folds from seed 7;") == 1
    assert results[2, None]["split_seed"] == 2 and results[1, 7]["split_seed"] == 7

    def baseline_folds(result):  # the baseline is deterministic, so equal folds give equal scores
        return [(f["acc"], f["balanced_acc"]) for f in result["models"]["hgb"]["folds"]]

    assert baseline_folds(results[1, 7]) == baseline_folds(results[2, 7])
    assert baseline_folds(results[2, 7]) != baseline_folds(results[2, None])


def test_cv_help_leaves_out_the_flags_cv_refuses_and_train_help_keeps_them(capsys):
    refused = ("--runs_dir", "--out_dir", "--save_preds", "--resume", "--tensorboard", "--visualize_training",
               "--viz_every", "--viz_method", "--viz_train_samples", "--viz_val_samples")
    for command, listed in (("cv", False), ("train", True)):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = capsys.readouterr().out
        assert all((flag in text) == listed for flag in refused), command
    assert "--folds" in cli.command_parser("cv", "latentlapse cv").format_help()


@pytest.mark.parametrize("class_names", [("AGN", "STAR"), ("AGN", "CV", "HM-STAR", "HMXB", "LM-STAR", "LMXB", "NS", "YSO"),
                                         ("AGN", "HM/LM", "YSO/CV", "NS/HMXB/LMXB/NS_BIN")])
def test_the_summary_columns_line_up_whatever_the_class_names(class_names):
    """Every row's first number ends in the same column: the label column fits the longest label
    printed ("ECE floor (calibrated)", "at balanced priors"), not only the class names."""
    from latentlapse.xray.cv import summary_text

    stat = {"mean": 0.5, "std": 0.01}
    per_class = {name: {"recall": stat, "f1": stat} for name in class_names}
    ours = {key: stat for key in ("acc", "balanced_acc", "macro_f1", "ece_raw", "ece_calibrated", "ece_floor")}
    ours.update(per_class=per_class, balanced_priors={"acc": stat, "balanced_acc": stat},
                train_priors={"acc": stat, "balanced_acc": stat})
    hgb = {"acc": stat, "balanced_acc": stat, "macro_f1": stat, "per_class": per_class}
    result = {"folds": 3, "data": "s.txt", "n_sources": 600, "n_features": 380, "seed": 42, "class_names": list(class_names),
              "models": {"latentlapse": {"summary": ours}, "hgb": {"summary": hgb}}}
    lines = summary_text(result).splitlines()
    table = [line for line in lines[3:] if "±" in line and not line.startswith("ECE of all")]
    assert len(table) == 6 + 2 + 2 * len(class_names)
    first_number_ends = {line.index("±") for line in table if not line.lstrip().startswith("at ")}
    assert len(first_number_ends) == 1, "\n".join(table)
    assert any(line.startswith("ECE floor (calibrated)  ") for line in table)
    priors = [line for line in table if line.startswith("at ")]
    assert len({line.index("acc ") for line in priors}) == 1 and priors[0].index("acc ") > len("at balanced priors")
