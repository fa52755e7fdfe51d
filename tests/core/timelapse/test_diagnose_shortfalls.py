"""A run that learns but is held back: plateau, weak structure, low minority precision, and a
verdict that weighs them — read on the recorded files of a real run of the README's command
(``recorded/default_150``: history.csv, latent_metrics.csv, final_metrics.json, run_metadata.json
of ``python main.py --classes 4 --epochs 150 --oversample_target 1.0 --visualize_training``) and
on hand-made histories that show one sign at a time."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from synthetic_runs import COUNTS, NAMES, frame_row, history_rows, write_run

from latentlapse.core.timelapse import curves, diagnose, shortfalls, trends
from latentlapse.core.timelapse.remedy_terms import Terms
from latentlapse.core.timelapse.runfiles import load_run

RECORDED = Path(__file__).parent / "recorded" / "default_150"
FRAMES = (1, 5, 10, 20, 25, 30, 40, 50, 60)


@pytest.fixture(scope="module")
def recorded():
    diagnosis = diagnose.diagnose_run(RECORDED)
    return diagnosis, {f.kind: f for f in diagnosis.findings}, diagnose.format_text(diagnosis)


def test_the_recorded_run_is_not_called_learning_well(recorded):
    diagnosis, found, _ = recorded
    assert "learning well" not in diagnosis.verdict
    assert {"plateau", "weak_structure", "low_minority_precision"} <= {f.kind for f in diagnosis.warnings}
    assert diagnosis.verdict == (
        "4 warning signs: Weak cluster structure: silhouette 0.19, under the 0.25 structure line; "
        "NS/HMXB/LMXB/NS_BIN embedded in the AGN cluster; Validation stopped improving after epoch 53 "
        "(97 of 150 epochs without gain); Low precision of minority classes: YSO/CV 0.57, NS/HMXB/LMXB/NS_BIN 0.33")


def test_plateau_names_its_epoch_its_cost_and_patience(recorded):
    _, found, text = recorded
    plateau = found["plateau"]
    assert plateau.values["epoch"] == 53 and plateau.values["epochs_after"] == 97
    assert plateau.values["patience_stop"] == 73 and plateau.values["patience_best"] == 53
    assert plateau.evidence[0] == ("validation balanced accuracy peaked at epoch 53 (0.8221, kept in best.pt); epoch "
                                   "150: 0.7977; the 97 epochs after the peak (65% of the run) brought no gain")
    assert plateau.evidence[1].startswith("they took ") and plateau.evidence[1].endswith(" min of training")
    assert ("validation errors (full split): 90 at epoch 60, 87 at epoch 150; a larger fall since the first frame, "
            "where the diagnosis reports one, happened before the peak") in plateau.evidence
    assert ("the learning rate fell from 0.0005 at epoch 53 to 1.5e-08 (cut each time the validation loss stalled), "
            "so the late updates hardly moved the weights") in plateau.evidence
    assert "    -> Solution: stop when validation stalls: --patience 20 would have ended this run at epoch 73 instead " \
           "of 150, with best.pt from epoch 53 (0.8221)" in text


@pytest.mark.parametrize("evaluated, config, kept, remedy", [
    ("best checkpoint (chosen by the one-cycle schedule: its last epoch) on the validation split",
     {"schedule": "onecycle"}, False, "runs all --epochs and keeps the last: --epochs 53 would anneal and end there"),
    ("best checkpoint (chosen by validation loss) on the validation split", {"schedule": "plateau"}, False,
     "--patience 20 (for this model it watches the validation loss"),
    ("the model at the last logged epoch", {}, False,
     "early stopping after 20 epochs without gain would have ended this run at epoch 73 instead of 150, with its best"),
])
def test_plateau_speaks_of_best_pt_and_patience_only_where_they_apply(evaluated, config, kept, remedy):
    run = load_run(RECORDED)
    finding, = shortfalls.plateau(run.history, run.metrics, config, {"evaluated": evaluated, "best_epoch": 150})
    assert ("kept in best.pt" in finding.evidence[0]) is kept
    assert remedy in finding.remedy


def test_weak_structure_quotes_the_line_metrics_png_draws(recorded):
    _, found, _ = recorded
    weak = found["weak_structure"]
    assert weak.values["line"] is trends.SILHOUETTE_FORMED is diagnose.SILHOUETTE_FORMED is curves.SILHOUETTE_FORMED
    assert weak.evidence[0] == ('Epoch 150: silhouette 0.19, under the line at 0.25 marked "structure" in metrics.png '
                                "(0.25 or less: no substantial cluster structure); from epoch 50 on it stayed between "
                                "0.18 and 0.19")
    assert weak.evidence[1].startswith("yet 5-NN balanced accuracy is 0.74 (formed clusters reach 0.62; the frames "
                                       "show plain 5-NN accuracy, 0.85, which the large classes lift): the two can "
                                       "differ because")
    figure = curves.curves_figure(load_run(RECORDED))
    lines = [line for ax in figure.axes for line in ax.get_lines()
             if len(set(np.asarray(line.get_ydata(), dtype=float))) == 1]
    assert any(float(line.get_ydata()[0]) == trends.SILHOUETTE_FORMED for line in lines)


def test_low_precision_is_called_the_price_of_oversampling(recorded):
    _, found, _ = recorded
    low = found["low_minority_precision"]
    assert low.title == "Low precision of minority classes: YSO/CV 0.57, NS/HMXB/LMXB/NS_BIN 0.33"
    assert low.evidence[1] == ("NS/HMXB/LMXB/NS_BIN: precision 0.33 (13 of the 39 validation sources called "
                               "NS/HMXB/LMXB/NS_BIN are NS/HMXB/LMXB/NS_BIN; the others: 23 AGN, 2 YSO/CV, 1 HM/LM), "
                               "recall 0.65 (13 of its 20)")
    assert low.evidence[2].startswith("precision can be this far under recall because oversampling "
                                      "(--oversample_target 1.0)")
    assert "(YSO/CV: 117 calls for 69 sources, NS/HMXB/LMXB/NS_BIN: 39 calls for 20 sources)" in low.evidence[2]
    assert low.remedy.startswith("the price of oversampling: lower --oversample_target (now 1.0; e.g. 0.5)")


def test_tightening_says_why_the_raw_spread_rose(recorded):
    _, found, _ = recorded
    tightening = found["clusters_tightening"]
    assert tightening.severity == "good"
    assert tightening.evidence[-1] == (
        "the raw spread rose 2.57 → 6.09 while the mean distance between class centres went 2.84 → 8.82 (×3.10): the "
        "network rescales its whole feature space as it trains, so raw spread and cluster tightness can move apart; "
        "relative to the distances between classes the spread changed -24%, and that ratio decides")


def test_classes_moving_apart_says_why_raw_distances_grow(recorded):
    _, found, _ = recorded
    apart = found["classes_moving_apart"]
    assert apart.evidence[2] == ("3 of 6 class pairs moved apart relative to their spread (distance ÷ mean spread up at "
                                 "least 10%); raw distances grow whenever the network rescales its whole feature "
                                 "space, so a pair counts only when its distance grows faster than its spread")


def test_a_run_that_already_uses_patience_gets_no_plateau(tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(RECORDED, folder)
    meta = json.loads((folder / "run_metadata.json").read_text())
    meta["config"]["patience"] = 20
    (folder / "run_metadata.json").write_text(json.dumps(meta))
    assert "plateau" not in {f.kind for f in diagnose.diagnose_run(folder).findings}


def test_patience_stop_follows_the_training_loop_rule():
    scores = np.array([0.5, 0.6, 0.6, 0.6, 0.7, 0.7])
    assert shortfalls.patience_stop(scores, 2) == (3, 1)  # stopped before the later, better epoch
    assert shortfalls.patience_stop(scores, 3) == (5, 4)


def test_a_library_run_is_told_its_remedies_in_the_training_loops_terms(tmp_path):
    run = tmp_path / "run_001"
    shutil.copytree(RECORDED, run)
    meta = json.loads((run / "run_metadata.json").read_text())
    meta["made_by"] = "latentlapse 0.1.0 Timelapse"  # as a Timelapse records it
    (run / "run_metadata.json").write_text(json.dumps(meta))
    library, command_line = (diagnose.format_text(diagnose.diagnose_run(folder)) for folder in (run, RECORDED))
    assert "--patience 20 would have ended" in command_line and "raise --focal_gamma" in command_line
    assert not re.search(r"--[a-z]", library)
    assert "stop when validation stalls: early stopping after 20 epochs without gain would have ended" in library
    assert "or raise the gamma of a focal loss (now 2.0, e.g. 3.0)" in library
    assert "lower the oversampling of rare classes (now 1.0; e.g. 0.5)" in library


def _healthy(total=60):
    return [frame_row(e, (e - 1) / (total - 1)) for e in FRAMES]


def test_weak_structure_alone_makes_a_learning_run_with_a_warning():
    frames = _healthy()
    for row in frames:
        row["silhouette"] = 0.20
    findings = diagnose.diagnose(history_rows(60), frames, NAMES, 60, class_counts=COUNTS,
                                 config={"oversample_target": 0.7})
    diagnosis = diagnose.Diagnosis("run_001", 60, 60, FRAMES, tuple(findings))
    assert [f.kind for f in diagnosis.warnings] == ["weak_structure"]
    assert diagnosis.verdict == ("learning, but with 1 warning sign: Weak cluster structure: silhouette 0.20, under "
                                 "the 0.25 structure line")


def test_a_run_that_keeps_improving_has_no_plateau_and_no_shortfall(tmp_path):
    diagnosis = diagnose.diagnose_run(write_run(tmp_path / "run_001", epochs=60, frames=FRAMES))
    assert diagnosis.verdict.startswith("model learning well")
    assert not {f.kind for f in diagnosis.findings} & set(shortfalls.KINDS)


def test_low_precision_without_oversampling_points_at_the_loss_weights():
    final = {"per_class": {n: {"precision": p, "recall": 0.8} for n, p in zip(NAMES, (0.95, 0.9, 0.8, 0.4))},
             "confusion_matrix": [[250, 5, 5, 8], [5, 180, 2, 2], [5, 2, 60, 2], [4, 0, 0, 16]]}
    [low] = shortfalls.low_minority_precision(final, NAMES, COUNTS, {"oversample_target": 0.0, "alpha": "inverse"})
    assert low.title == "Low precision of minority classes: NS/HMXB/LMXB/NS_BIN 0.40"
    assert low.remedy.startswith("the loss weights (--alpha inverse) favour the rare classes")
    [low] = shortfalls.low_minority_precision(final, NAMES, COUNTS, {}, terms=Terms(library=True))
    assert low.remedy == ("where the loss weights the rare classes up, weigh them less to call them less often, or "
                          "require a higher probability before trusting a rare-class call")


def test_low_precision_of_a_class_the_validation_split_lacks_says_it_has_no_recall():
    final = {"per_class": {n: {"precision": p, "recall": r} for n, p, r in zip(NAMES, (0.95, 0.9, 0.8, 0.0),
                                                                                 (0.9, 0.9, 0.8, None))},
             "confusion_matrix": [[250, 5, 5, 8], [5, 180, 2, 2], [5, 2, 60, 2], [0, 0, 0, 0]]}
    [low] = shortfalls.low_minority_precision(final, NAMES, COUNTS, {"alpha": "inverse"})
    assert low.evidence[0].endswith("the others: 8 AGN, 2 YSO/CV, 2 HM/LM), no recall (no validation source of its own)")


def test_low_precision_with_low_recall_is_not_blamed_on_oversampling():
    """The review's run: YSO/CV called 60 times for 32 sources, NS 5 times for 13 (recall 0.15):
    only YSO/CV is said to trade recall for precision, and NS gets a remedy that does not cut its recall."""
    final = {"per_class": {"AGN": {"precision": 0.94}, "HM/LM": {"precision": 0.91}, "YSO/CV": {"precision": 0.48},
                           "NS/HMXB/LMXB/NS_BIN": {"precision": 0.40}},
             "confusion_matrix": [[95, 2, 17, 0], [6, 67, 7, 1], [0, 1, 29, 2], [0, 4, 7, 2]]}
    [low] = shortfalls.low_minority_precision(final, NAMES, COUNTS, {"oversample_target": 0.7})
    text = " ".join(low.evidence) + " " + low.remedy
    assert "finds most of them" not in text
    assert "calls YSO/CV more often than it occurs (YSO/CV: 60 calls for 32 sources)" in low.evidence[2]
    assert low.evidence[3].startswith("NS/HMXB/LMXB/NS_BIN is called no more often than it occurs "
                                      "(NS/HMXB/LMXB/NS_BIN: 5 calls for 13 sources), so the low precision is not "
                                      "bought with recall")
    assert "to trade some of the recall of YSO/CV back" in low.remedy
    assert "the model does not yet tell NS/HMXB/LMXB/NS_BIN apart" in low.remedy
    only_ns = {"per_class": {**final["per_class"], "YSO/CV": {"precision": 0.74}},
               "confusion_matrix": [[95, 2, 3, 0], [6, 67, 0, 1], [0, 1, 29, 2], [0, 4, 7, 2]]}
    [low] = shortfalls.low_minority_precision(only_ns, NAMES, COUNTS, {"oversample_target": 0.7})
    assert low.title == "Low precision of minority classes: NS/HMXB/LMXB/NS_BIN 0.40"
    assert "oversample_target" not in low.remedy and "oversampling (" not in " ".join(low.evidence)


def test_plateau_says_how_far_the_learning_rate_fell_below_the_collapse_too():
    """The review's run: 0.0005 at the peak, 1.56e-05 at the end (32x) went unmentioned."""
    history = history_rows(60)
    for row in history:
        row["val_balanced_acc"] = 0.75 if row["epoch"] == 31 else 0.70
        row["lr"] = 0.0005 / 2 ** max(0, (row["epoch"] - 31) // 5)
    [finding] = shortfalls.plateau(history, [], {})
    assert ("the learning rate fell 32× from 0.0005 at epoch 31 to 1.6e-05 (cut each time the validation loss "
            "stalled)") in finding.evidence
    assert finding.values["lr_fall"] == 32
