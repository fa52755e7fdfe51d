"""Per-source training dynamics: statistics on a hand-made history, the records, the size bound."""

from __future__ import annotations

import numpy as np
import pytest

from latentlapse.core.timelapse import dynamics, dynamics_summary
from latentlapse.core.timelapse.dynamics import DynamicsHistory


def _history() -> DynamicsHistory:
    """Three epochs of three sources: A (label 0) learned at epoch 2, B (label 1) forgotten once
    and relearned, C (label 1) always taken for class 2."""
    return DynamicsHistory(
        epochs=np.array([1, 2, 3]),
        ids=np.array(["A", "B", "C"]),
        split=np.array(["train", "train", "val"]),
        labels=np.array([0, 1, 1]),
        true_proba=np.array([[0.2, 0.9, 0.1], [0.8, 0.3, 0.1], [0.6, 0.9, 0.1]]),
        margin=np.array([[-1.0, 3.0, -2.0], [2.0, -1.0, -2.0], [1.0, 3.0, -2.0]]),
        pred=np.array([[1, 1, 2], [0, 0, 2], [0, 1, 2]]),
        class_names=("X", "Y", "Z"),
    )


def test_the_suspect_score_reads_the_first_third_of_the_epochs():
    margin = np.array([[-1.0, 2.0], [-3.0, 0.0], [5.0, 1.0], [5.0, 1.0], [5.0, 1.0], [5.0, 1.0], [9.0, 9.0]])
    assert dynamics.suspect_scores(margin).tolist() == [2.0, -1.0]  # epochs 1-2 of 7
    assert dynamics.suspect_scores(margin[:2]).tolist() == [1.0, -2.0]  # at least one epoch


def test_statistics_of_a_hand_made_history():
    stats = dynamics.source_stats(_history())
    assert stats.confidence == pytest.approx([1.6 / 3, 0.7, 0.1])
    assert stats.variability == pytest.approx([np.sqrt(0.56 / 9), np.sqrt(0.08), 0.0])
    assert stats.correctness == pytest.approx([2 / 3, 2 / 3, 0.0])
    assert stats.forgetting.tolist() == [0, 1, 0]
    assert stats.learned_epoch.tolist() == [2, 3, -1]
    assert stats.aum == pytest.approx([2 / 3, 5 / 3, -2.0])
    assert stats.final_pred.tolist() == [0, 1, 2]
    assert stats.region.tolist() == ["ambiguous", "ambiguous", "hard-to-learn"]
    # the negative margin over the first third of the epochs (here the first)
    assert stats.score == pytest.approx([1.0, -3.0, 2.0])
    assert stats.rank.tolist() == [2, 3, 1]
    assert stats.suspect.tolist() == [False, False, True]
    assert stats.other_class.tolist() == [1, 0, 2] and stats.other_share == pytest.approx([1 / 3, 1 / 3, 1.0])


def test_regions_follow_the_written_thresholds():
    confidence = np.array([0.9, 0.6, 0.5, 0.4, 0.1, 0.9])
    variability = np.array([0.05, 0.19, 0.1, 0.1, 0.0, 0.2])
    assert dynamics.regions(confidence, variability).tolist() == [
        "easy-to-learn", "easy-to-learn", "ambiguous", "hard-to-learn", "hard-to-learn", "ambiguous"]


def test_summary_rows_and_suspects():
    history = _history()
    stats = dynamics.source_stats(history)
    rows = dynamics_summary.summary_rows(history, stats)
    assert [r["id"] for r in rows] == ["C", "A", "B"]  # most suspect first
    c = rows[0]
    assert (c["split"], c["true_class"], c["final_prediction"], c["learned_epoch"], c["region"], c["suspect"],
            c["model_says"]) == ("val", "Y", "Z", "", "hard-to-learn", "1", "Z")
    assert rows[2]["forgetting_events"] == "1" and rows[2]["learned_epoch"] == "3"
    summary = dynamics_summary.suspects(history, stats)
    assert (summary.n_suspects, summary.by_class) == (1, {"X": 0, "Y": 1, "Z": 0})
    assert [s.id for s in summary.top] == ["C"]  # A and B are ranked but not flagged: not listed
    assert "1 of 3 sources are label suspects" in summary.sentence() and "Y 1" in summary.sentence()
    assert summary.heading() == "the only one"


def test_every_list_of_suspects_shows_the_flagged_ones_only_and_says_where_it_is_cut(tmp_path):
    """The diagnosis, the report and ``inspect --suspects`` list the same sources: the flagged
    suspects ranked by score, never a source whose flag is 0, and "top N of K" when cut."""
    from synthetic_runs import write_run

    from latentlapse.core.timelapse import inspect_source

    run = write_run(tmp_path / "run_001", epochs=12, dynamics=True)  # T001 and V002 flagged, 8 more sources ranked
    rows = dynamics.read_summary(run)
    assert len(rows) > dynamics_summary.TOP_SUSPECTS // 2 and sum(r["suspect"] == "1" for r in rows) == 2
    flagged = [r["id"] for r in rows if r["suspect"] == "1"]
    finding, = dynamics_summary.suspect_findings(run)
    assert finding.values["top"] == flagged and finding.evidence[1] == "all 2, by suspect score:"
    assert [line.split()[1] for line in finding.evidence[2:]] == flagged
    page = dynamics_summary.suspects_html(dynamics_summary.load_suspects(run))
    assert "All 2, by suspect score:" in page and page.count("<tr><td>") == 2
    assert all(f"<td>{i}</td>" in page for i in flagged)
    text = inspect_source.suspects_text(run, 20)
    assert text.splitlines()[0].endswith("are label suspects; all 2, by suspect score:")
    assert [line.split()[1] for line in text.splitlines()[2:]] == flagged
    cut = inspect_source.suspects_text(run, 1).splitlines()
    assert cut[0].endswith("; the top 1 of 2, by suspect score:") and [line.split()[1] for line in cut[2:]] == flagged[:1]
    short = dynamics_summary.suspects_html(dynamics_summary.load_suspects(run, top=1))
    assert "The top 1 of 2, by suspect score:" in short and short.count("<tr><td>") == 1


def test_epoch_record_margin_and_prediction():
    logits = np.array([[2.0, 0.5, 1.0], [0.0, 3.0, 1.0]])
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    record = dynamics.epoch_record(np.array([0, 2]), proba, logits)
    assert record["margin"].dtype == np.float16 and record["pred"].dtype == np.int8
    assert record["margin"].tolist() == [1.0, -2.0]
    assert record["pred"].tolist() == [0, 1]
    assert record["true_proba"] == pytest.approx([proba[0, 0], proba[1, 2]], abs=1e-3)


def test_records_round_trip_and_resume_drops_later_epochs(tmp_path):
    labels = np.array([0, 1, 1])
    dynamics.write_sources(tmp_path, np.array(["a", "b", "c"]), np.array(["train", "train", "val"]), labels, ("X", "Y"))
    rng = np.random.default_rng(0)
    for epoch in (1, 2, 3):
        logits = rng.normal(size=(3, 2))
        proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        dynamics.write_epoch(tmp_path, epoch, dynamics.epoch_record(labels, proba, logits))
    history = dynamics.load_history(tmp_path)
    assert history.epochs.tolist() == [1, 2, 3] and history.true_proba.shape == (3, 3)
    assert history.ids.tolist() == ["a", "b", "c"] and history.class_names == ("X", "Y")
    dynamics.drop_epochs_after(tmp_path, 1)
    assert dynamics.load_history(tmp_path).epochs.tolist() == [1]
    assert not list(tmp_path.rglob("*.tmp"))


def test_the_default_run_stays_under_five_megabytes(tmp_path):
    """The built-in set (2730 sources, 4 classes) over the default run's 150 epochs."""
    n, epochs = 2730, 150
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, n)
    ids = np.array([f"SIM{i:06d}" for i in range(n)])
    dynamics.write_sources(tmp_path, ids, np.where(np.arange(n) < 2184, "train", "val"), labels, ("A", "B", "C", "D"))
    logits = rng.normal(size=(n, 4)) * 5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    one_epoch = dynamics.write_epoch(tmp_path, 1, dynamics.epoch_record(labels, proba, logits)).stat().st_size
    sources = (tmp_path / dynamics.DYNAMICS_DIR / dynamics.SOURCES_FILE).stat().st_size
    assert one_epoch * epochs + sources <= 5_000_000, (one_epoch, sources)


def test_the_suspects_of_a_short_run_come_with_a_caution():
    from latentlapse.core.timelapse.dynamics_summary import SuspectSummary

    def summary(epochs):
        return SuspectSummary(n_sources=45, n_suspects=26, by_class={"a": 20, "b": 6}, top=(), n_epochs=epochs)

    assert "only 2 epochs recorded" in summary(2).sentence() and "read the suspects of a longer run" in summary(2).sentence()
    assert "epochs recorded" not in summary(30).sentence()


def test_inspect_says_a_run_did_not_complete_and_a_completed_one_is_named_plainly(tmp_path):
    import json

    from synthetic_runs import write_run

    from latentlapse.core.timelapse import inspect_source

    run = write_run(tmp_path / "run_001", epochs=12, dynamics=True)
    assert inspect_source.suspects_text(run, 2).split(" are label suspects")[0].endswith("sources of run_001")
    meta = json.loads((run / "run_metadata.json").read_text())
    meta["status"], meta["config"]["epochs"] = "interrupted", 30
    (run / "run_metadata.json").write_text(json.dumps(meta))
    assert " of run_001 (interrupted after epoch 12 of 30) are label suspects" in inspect_source.suspects_text(run, 2)
    assert inspect_source.source_text(run, "T001").startswith(
        "T001 (train split) in run_001 (interrupted after epoch 12 of 30): labelled")


@pytest.mark.parametrize("kind, check", [("spectra", "(spectrum, literature class)"),
                                         ("catalog", "(their catalogue values, literature class)"),
                                         (None, "(their inputs, the source of their labels)")])
def test_the_suspects_remedy_names_what_the_run_read(tmp_path, kind, check):
    import json

    from synthetic_runs import write_run

    from latentlapse.core.timelapse.dynamics_summary import suspect_findings

    run = write_run(tmp_path / "run_001", epochs=12, dynamics=True)
    meta = json.loads((run / "run_metadata.json").read_text())
    meta["data"]["kind"] = kind
    (run / "run_metadata.json").write_text(json.dumps(meta))
    [finding] = suspect_findings(run)
    assert finding.remedy.startswith(f"look at these sources again {check};")


def test_inspect_piped_into_a_reader_that_closes_early_exits_quietly(tmp_path):
    """``latentlapse inspect RUN | head`` printed a BrokenPipeError traceback when head left first."""
    import subprocess
    import sys

    from synthetic_runs import write_run

    run = write_run(tmp_path / "run_001", epochs=12, dynamics=True)
    reader = subprocess.Popen([sys.executable, "-m", "latentlapse", "inspect", str(run), "--suspects", "5"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader.stdout.close()  # the reader is gone before the first line is written
    with reader.stderr:
        stderr = reader.stderr.read().decode()
    assert reader.wait(timeout=60) == 1
    assert stderr == ""
