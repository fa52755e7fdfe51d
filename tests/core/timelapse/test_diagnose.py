"""Each of the guide's readings on a history made to show it — and only it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic_runs import COUNTS, NAMES, SHORT, frame_row, history_rows, write_run

from latentlapse.core.timelapse import diagnose
from latentlapse.core.timelapse.remedy_terms import Terms

FRAMES = (1, 5, 10, 20, 25, 30, 40, 50, 60)
CONFIG = {"oversample_target": 0.7, "focal_gamma": 2.0, "weight_decay": 1e-4}


def run(history, frames, total=60, counts=COUNTS):
    return diagnose.diagnose(history, frames, NAMES, total, class_counts=counts, config=CONFIG)


def kinds(findings, severity):
    return {f.kind for f in findings if f.severity == severity}


def healthy_frames(epochs=FRAMES, total=60):
    return [frame_row(e, (e - 1) / (total - 1)) for e in epochs]


def flat_frames(epochs=FRAMES):
    """A latent space that never organises: same spread, same distances, neighbours by chance."""
    rows = []
    for e in epochs:
        row = frame_row(e, 0.0)
        row.update(silhouette=0.04, knn_acc=0.3)
        row.update({f"knn_to_{c}__{d}": 0.34 if c == d else 0.22 for c in SHORT for d in SHORT})
        rows.append(row)
    return rows


def with_series(rows, **series):
    """Copies of history rows with whole columns replaced."""
    out = [dict(r) for r in rows]
    for key, values in series.items():
        for row, value in zip(out, values):
            row[key] = float(value)
    return out


def test_good_progress_shows_all_three_readings_and_no_warning():
    findings = run(history_rows(60), healthy_frames())
    assert kinds(findings, "good") == {"clusters_tightening", "classes_moving_apart", "errors_falling"}
    assert kinds(findings, "warning") == set()
    text = "\n".join(line for f in findings for line in f.evidence)
    assert "Epoch 1: Spread = 2.00 units" in text and "Epoch 60: Spread = 1.00 units" in text
    assert "Epoch 1: AGN ↔ HM/LM distance = 2.0" in text and "Epoch 60: AGN ↔ HM/LM distance = 4.0" in text
    assert "Epoch 1: 150 errors" in text and "Epoch 60: 30 errors" in text


def test_a_space_that_only_rescales_is_neither_tightening_nor_moving_apart():
    frames = []
    for k, e in enumerate(FRAMES):
        row = frame_row(e, 0.0)
        scale = 1 + k  # raw spread and distances both grow: nothing changes relative to each other
        for key in [k for k in row if k.startswith(("spread_", "dist_"))] :
            if key != "spread_ratio":
                row[key] *= scale
        frames.append(row)
    findings = run(history_rows(60), frames)
    assert "clusters_tightening" not in kinds(findings, "good")
    assert "classes_moving_apart" not in kinds(findings, "good")
    tightening = next(f for f in findings if f.kind == "clusters_tightening")
    assert tightening.values["feature_scale_change"] == pytest.approx(9.0)


def test_classes_not_moving_apart_shows_a_pair_that_did_not():
    frames = flat_frames()
    last = frames[-1]
    pair_keys = sorted(k for k in last if k.startswith("dist_"))
    last[pair_keys[0]] *= 3.0  # one pair moves far apart; every other one comes 20 % closer
    for key in pair_keys[1:]:
        last[key] *= 0.8
    finding = next(f for f in run(history_rows(60), frames) if f.kind == "classes_moving_apart")
    assert finding.severity == "info" and finding.values["pairs_apart"] == 1
    assert finding.values["separation_gain"] == pytest.approx(-0.2)
    assert finding.values["distance_last"] == pytest.approx(0.8 * finding.values["distance_first"])
    assert "came closer: " in finding.evidence[-1]


def test_clusters_not_forming_is_the_only_warning():
    findings = run(history_rows(60), flat_frames())
    assert kinds(findings, "warning") == {"clusters_not_forming"}
    finding = next(f for f in findings if f.kind == "clusters_not_forming")
    assert finding.values["epoch"] == 60 and finding.values["judged_from"] == 30
    assert "capacity" in finding.remedy and "data" in finding.remedy


def test_a_5nn_accuracy_just_under_its_bar_never_prints_as_equal_to_it():
    """The review's run: 0.622 against the 0.625 bar read "0.62 (... formed clusters reach 0.62)"."""
    frames = flat_frames()
    frames[-1].update({f"knn_to_{c}__{d}": 0.622 if c == d else 0.1 for c in SHORT for d in SHORT})
    finding = next(f for f in run(history_rows(60), frames) if f.kind == "clusters_not_forming")
    assert "5-NN balanced accuracy 0.622 (chance 0.25; formed clusters reach 0.625)" in finding.evidence[1]
    assert diagnose.trends.apart(0.74, 0.625) == ("0.74", "0.62")
    assert diagnose.trends.apart(0.62496, 0.625) == ("0.62496", "0.62500")


def test_clusters_are_judged_only_after_half_the_run_or_50_epochs():
    early = run(history_rows(60), flat_frames((1, 5, 10, 20, 25)))  # nothing drawn after epoch 30 yet
    assert "clusters_not_forming" not in kinds(early, "warning")
    long_run = run(history_rows(200), flat_frames((1, 25, 50)), total=200)  # 50 epochs reached
    assert "clusters_not_forming" in kinds(long_run, "warning")


def test_minority_class_embedded_in_a_majority_cluster_is_named_with_its_host():
    frames = healthy_frames()
    frames[-1].update({"knn_to_YSO_CV__AGN": 0.7, "knn_to_YSO_CV__YSO_CV": 0.2, "knn_to_YSO_CV__HM_LM": 0.05,
                       "knn_to_YSO_CV__NS_HMXB_LMXB_NS_BIN": 0.05, "recall_YSO_CV": 0.31})
    findings = run(history_rows(60), frames)
    assert kinds(findings, "warning") == {"minority_embedded"}
    finding = next(f for f in findings if f.kind == "minority_embedded")
    assert finding.title == "YSO/CV embedded in the AGN cluster"
    assert (finding.values["class"], finding.values["host"], finding.values["share"]) == ("YSO/CV", "AGN", 0.7)
    assert "--oversample_target (now 0.7" in finding.remedy and "--focal_gamma" in finding.remedy
    assert "augmentation" in finding.remedy


def test_a_majority_class_inside_a_minority_cluster_is_not_called_embedded():
    frames = healthy_frames()
    frames[-1].update({"knn_to_AGN__YSO_CV": 0.6, "knn_to_AGN__AGN": 0.4})
    assert "minority_embedded" not in kinds(run(history_rows(60), frames), "warning")
    without_counts = run(history_rows(60), frames, counts=None)  # sizes unknown: any class may be embedded
    assert "minority_embedded" in kinds(without_counts, "warning")


def test_half_among_another_class_is_embedded_unless_as_many_sit_among_their_own():
    frames = healthy_frames()
    frames[-1].update({"knn_to_YSO_CV__AGN": 0.5, "knn_to_YSO_CV__YSO_CV": 0.35, "knn_to_YSO_CV__HM_LM": 0.15})
    assert "minority_embedded" in kinds(run(history_rows(60), frames), "warning")
    frames[-1].update({"knn_to_YSO_CV__AGN": 0.5, "knn_to_YSO_CV__YSO_CV": 0.5, "knn_to_YSO_CV__HM_LM": 0.0})
    assert "minority_embedded" not in kinds(run(history_rows(60), frames), "warning")
    frames[-1].update({"knn_to_YSO_CV__AGN": 0.45, "knn_to_YSO_CV__YSO_CV": 0.3, "knn_to_YSO_CV__HM_LM": 0.25})
    assert "minority_embedded" not in kinds(run(history_rows(60), frames), "warning")  # under half: scattered


def overfitting_history(noise=0.0, seed=0, val_slope=-0.0005):
    """Validation loss bottoms out at epoch 25 and climbs; training keeps improving; validation stalls."""
    e = np.arange(1, 61)
    jitter = np.random.default_rng(seed).normal(0, noise, size=(3, 60))
    train_acc = 0.6 + 0.38 * (1 - np.exp(-e / 15)) + jitter[0] * 0.2
    val_acc = np.where(e <= 25, 0.5 + 0.3 * (e / 25), 0.8 + val_slope * (e - 25)) + jitter[1] * 0.2
    val_loss = np.where(e <= 25, 0.9 - 0.5 * (e / 25), 0.4 + 0.006 * (e - 25)) * (1 + jitter[2])
    return with_series(history_rows(60), train_acc=train_acc, val_acc=val_acc, val_loss=val_loss)


@pytest.mark.parametrize("noise, val_slope", [(0.0, -0.0005), (0.03, -0.0005), (0.0, 0.0004)])
def test_overfitting_names_the_epoch_it_began(noise, val_slope):
    # the last case: validation still creeps up (+1.4 points) but keeps under half of training's gain
    findings = run(overfitting_history(noise, val_slope=val_slope), healthy_frames())
    assert kinds(findings, "warning") == {"overfitting"}
    finding = next(f for f in findings if f.kind == "overfitting")
    assert abs(finding.values["epoch"] - 25) <= 3
    assert f"epoch {finding.values['epoch']}" in finding.title
    assert f"--epochs {finding.values['epoch']}" in finding.remedy and "--weight_decay" in finding.remedy


@pytest.mark.parametrize("evaluated, config, best_line, patience, oversampling", [
    ("best checkpoint (chosen by validation balanced accuracy) on the validation split", CONFIG,
     "best.pt holds epoch 30 (highest validation balanced accuracy)", True, True),
    ("best checkpoint (chosen by the one-cycle schedule: its last epoch) on the validation split",
     {"schedule": "onecycle", "oversample_target": 0.0, "weight_decay": 1e-3},
     "best.pt holds epoch 30 (the one-cycle schedule's last epoch)", False, False),
    ("the model at the last logged epoch", {}, None, True, False),  # a library run: no best.pt
])
def test_overfitting_says_what_best_pt_holds_and_offers_only_what_the_run_accepts(
        evaluated, config, best_line, patience, oversampling):
    findings = diagnose.diagnose(overfitting_history(), healthy_frames(), NAMES, 60, class_counts=COUNTS,
                                 config=config, final={"evaluated": evaluated, "best_epoch": 30})
    finding = next(f for f in findings if f.kind == "overfitting")
    assert [e for e in finding.evidence if e.startswith("best.pt")] == ([best_line] if best_line else [])
    assert ("--patience" in finding.remedy) is patience
    assert ("oversample" in finding.remedy) is oversampling
    assert "(mean of the last 3 epochs, " in finding.evidence[0]


def test_overfitting_and_underfitting_remedies_of_a_library_run_name_no_flag():
    library = Terms(library=True)
    findings = diagnose.diagnose(overfitting_history(), healthy_frames(), NAMES, 60, class_counts=COUNTS,
                                 config={}, final={"evaluated": "the model at the last logged epoch"}, terms=library)
    overfit = next(f for f in findings if f.kind == "overfitting")
    began = overfit.values["epoch"]
    assert overfit.remedy == (f"stop early at about epoch {began} (training for {began} epochs, or early stopping "
                              f"after 10 epochs without gain); regularise: raise the optimizer's weight decay, "
                              f"use a smaller model")
    e = np.arange(1, 61)
    low = 0.5 - 0.1 * np.exp(-e / 5)
    flat = with_series(history_rows(60), train_balanced_acc=low, train_acc=low + 0.1, val_acc=low, val_balanced_acc=low)
    underfit = next(f for f in diagnose.diagnose(flat, [], NAMES, 60, terms=library) if f.kind == "underfitting")
    assert underfit.remedy.endswith("train longer; check the learning rate")


def test_a_small_but_real_rise_is_an_early_sign_not_a_warning():
    history = overfitting_history()
    history = with_series(history, val_loss=[0.4 + 0.0006 * (r["epoch"] - 25)
                                             if r["epoch"] > 25 else r["val_loss"] for r in history])  # +5 % by epoch 60
    findings = run(history, healthy_frames())
    assert kinds(findings, "warning") == set()
    onset = next(f for f in findings if f.kind == "overfitting_onset")
    assert onset.severity == "info" and abs(onset.values["epoch"] - 25) <= 3
    assert 0.02 < onset.values["val_loss_rise"] < diagnose.OVERFIT_LOSS_RISE


def test_noise_alone_or_a_loss_that_rises_while_accuracy_still_improves_is_not_overfitting():
    noisy = history_rows(60)
    jitter = 1 + np.random.default_rng(1).normal(0, 0.05, 60)
    noisy = with_series(noisy, val_loss=[r["val_loss"] * j for r, j in zip(noisy, jitter)])
    assert "overfitting" not in kinds(run(noisy, healthy_frames()), "warning")
    confident = overfitting_history()
    confident = with_series(confident, val_acc=np.linspace(0.5, 0.9, 60))  # loss up, accuracy up: calibration
    assert "overfitting" not in kinds(run(confident, healthy_frames()), "warning")


def test_underfitting_is_the_only_warning_of_a_low_flat_run():
    e = np.arange(1, 61)
    plateau = 0.5 - 0.1 * np.exp(-e / 5)
    history = with_series(history_rows(60), train_balanced_acc=plateau, train_acc=plateau + 0.1,
                          val_acc=plateau + 0.05, val_balanced_acc=plateau - 0.05)
    findings = run(history, [])
    assert kinds(findings, "warning") == {"underfitting"}
    finding = next(f for f in findings if f.kind == "underfitting")
    assert finding.values["metric"] == "train_balanced_acc" and finding.values["needed"] == pytest.approx(0.7)
    assert "bigger model" in finding.remedy and "longer" in finding.remedy


def test_a_low_but_still_rising_run_is_not_underfitting():
    rising = np.linspace(0.3, 0.62, 60)
    history = with_series(history_rows(60), train_balanced_acc=rising)
    assert "underfitting" not in kinds(run(history, []), "warning")


@pytest.mark.parametrize("frames", [[], [frame_row(3, 0.0)], [frame_row(1, 0.0), frame_row(3, 0.5)]])
def test_a_three_epoch_run_claims_no_warning_and_no_unseen_trend(frames):
    findings = run(history_rows(3), frames, total=3)
    assert kinds(findings, "warning") == set()
    assert "short_run" in kinds(findings, "info")
    if len(frames) < 2:
        assert kinds(findings, "good") == set()


def test_no_history_and_no_frames_do_not_crash():
    findings = diagnose.diagnose([], [], NAMES, 10)
    assert [f.kind for f in findings] == ["short_run"]


def test_thresholds_are_named_constants_that_decide():
    frames = healthy_frames()
    frames[-1].update({"knn_to_YSO_CV__AGN": 0.7, "knn_to_YSO_CV__YSO_CV": 0.3})
    assert "minority_embedded" in kinds(run(history_rows(60), frames), "warning")
    original = diagnose.EMBEDDED_SHARE
    try:
        diagnose.EMBEDDED_SHARE = 0.75
        assert "minority_embedded" not in kinds(run(history_rows(60), frames), "warning")
    finally:
        diagnose.EMBEDDED_SHARE = original
    assert diagnose.SILHOUETTE_FORMED == 0.25 and diagnose.MIN_EPOCHS_TO_JUDGE == 10


def test_diagnose_run_writes_text_and_json(tmp_path):
    folder = write_run(tmp_path / "run_001", epochs=60, frames=FRAMES)
    diagnosis = diagnose.diagnose_run(folder)
    text_path, json_path = diagnose.write_diagnosis(folder, diagnosis)
    text = text_path.read_text()
    assert text.startswith("Diagnosis of run_001: 60 of 60 epochs, 9 frames\nVerdict: model learning well")
    assert "[good] Clusters tightening over time" in text
    data = json.loads(json_path.read_text())
    assert data["verdict"] == diagnosis.verdict
    assert {f["kind"] for f in data["findings"]} == {"clusters_tightening", "classes_moving_apart", "errors_falling"}


def test_text_shows_warnings_with_their_solution():
    diagnosis = diagnose.Diagnosis("run_009", 60, 60, FRAMES, tuple(run(history_rows(60), flat_frames())))
    text = diagnose.format_text(diagnosis)
    assert "Verdict: 1 warning sign: Clusters not forming after 60 epochs" in text
    assert "[WARNING] Clusters not forming after 60 epochs" in text
    assert "    -> Solution: increase model capacity" in text
