"""The README and the guide say what a run does: their example numbers are quoted from the real
run recorded in docs/examples.json (``docs/regenerate_examples.py`` rewrites them), and a short
run of the same command writes the files, first line and table header they show."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README, GUIDE = REPO / "README.md", REPO / "docs" / "GUIDE.md"
TREE_MARKS = "│├└─ \u00a0"


def _regenerate():
    spec = importlib.util.spec_from_file_location("regenerate_examples", REPO / "docs" / "regenerate_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


regenerate = _regenerate()
EXAMPLES = json.loads((REPO / "docs" / "examples.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("doc", [README, GUIDE], ids=["README", "GUIDE"])
def test_every_example_number_is_the_recorded_runs(doc):
    text = doc.read_text(encoding="utf-8")
    found = regenerate.quoted(text)
    assert found["frames"], "the doc quotes no frame name"
    assert len(found["phases"]) == len(found["phase_starts"]), "a phase quote the rewrite cannot parse"
    assert regenerate.rewrite(text, EXAMPLES) == text  # each quote is already the recorded run's value
    assert EXAMPLES["command"].removeprefix("python ") in text


def test_the_guide_quotes_table_rows_phases_and_the_verdict():
    found = regenerate.quoted(GUIDE.read_text(encoding="utf-8"))
    assert len(found["progress"]) >= 2 and len(found["phases"]) >= 4 and len(found["verdicts"]) == 1
    assert found["verdicts"][0] == EXAMPLES["verdict"]


def test_a_hand_typed_number_is_caught_and_rewritten():
    text = README.read_text(encoding="utf-8")
    edited = re.sub(r"epoch_150_acc\d\.\d{4}", "epoch_150_acc0.9999", text)
    assert edited != text
    assert regenerate.rewrite(edited, EXAMPLES) == text


def _tree_names(doc: Path, first: str) -> set[str]:
    """File names of the run-folder tree in ``doc``: the code block whose entries start at ``first``."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip(TREE_MARKS).startswith(first))
    names: set[str] = set()
    for line in lines[start:]:
        if line.startswith("```"):
            break
        entry = re.split(r" {2,}", line.lstrip(TREE_MARKS).strip())[0]
        if not entry or entry.startswith(("run_0", "...")) or not line.lstrip(TREE_MARKS):
            continue
        for name in re.split(r", | \.\.\. ", entry):
            if " / ." in name:  # diagnosis.txt / .json
                stem, other = name.split(" / ")
                names |= {stem, Path(stem).stem + other}
            else:
                names.add(name)
    return names


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """``python main.py --classes 4 --epochs 2 --oversample_target 1.0 --visualize_training`` on small data."""
    from latentlapse.xray.data.simulate import simulate_dataset
    from latentlapse.xray.data.writers import write_dataset

    root = tmp_path_factory.mktemp("docs")
    data = root / "spectra.txt"
    write_dataset(data, simulate_dataset(n=300, seed=1))
    env = {"PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "--classes", "4", "--epochs", "2", "--oversample_target", "1.0",
         "--visualize_training", "--viz_every", "1", "--viz_method", "pca", "--viz_train_samples", "60",
         "--viz_val_samples", "40", "--data", str(data), "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=root, env=env, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    return root, done.stdout.splitlines()


def test_the_first_line_is_the_run_folder(short_run):
    root, lines = short_run
    assert lines[0] == "training_feature_visualizations/run_001"


@pytest.mark.parametrize("doc, first", [(README, "epoch_001_acc"), (GUIDE, "epoch_001_acc")], ids=["README", "GUIDE"])
def test_the_documented_run_folder_is_what_a_run_writes(short_run, doc, first):
    root, _ = short_run
    run = root / "training_feature_visualizations" / "run_001"
    documented = _tree_names(doc, first)
    frames = {n for n in documented if regenerate.FRAME.fullmatch(n)}
    assert frames and all(regenerate.FRAME.fullmatch(p.name) for p in run.glob("epoch_*.png"))
    written = {p.name for p in run.iterdir() if p.is_file() and not p.name.startswith("epoch_")}
    written |= {f"{p.name}/" for p in run.iterdir() if p.is_dir()}
    listed = {n.split("/")[0] + "/" if "/" in n else n for n in documented - frames}
    assert listed == written
    for entry in documented:  # a documented file inside a folder, e.g. layouts/epoch_NNN.npz, is there
        if "/" in entry:
            folder, pattern = entry.split("/")
            regex = re.escape(pattern).replace("NNN", r"\d{3,}").replace("XXX", r"\d{3,}")
            assert any(re.fullmatch(regex, p.name) for p in (run / folder).iterdir()), entry


def test_the_progress_table_starts_as_the_guide_shows(short_run):
    root, _ = short_run
    table = (root / "training_feature_visualizations" / "run_001" / "training_progress.txt").read_text().splitlines()
    assert table[:2] == EXAMPLES["progress_header"]
    guide = GUIDE.read_text(encoding="utf-8")
    assert "\n  " + "\n  ".join(table[:2]) + "\n" in guide
    assert all(regenerate.PROGRESS_ROW.fullmatch(row) for row in table[2:]) and len(table) == 4


def _spectra_line(i: int, label: str | None, n_values: int = 380) -> str:
    values = " ".join(["0.0025"] * (n_values - 1) + ["0.05"])
    return f"SRC{i} {values} 100" + (f" {label}" if label else "")


@pytest.mark.parametrize("case", ["fields", "labels", "class"])
def test_the_guides_quoted_data_errors_are_the_ones_printed(case, tmp_path, monkeypatch, capsys):
    """The three one-line errors the guide shows under "Every problem with a file" are printed
    word for word by files that have those problems."""
    from latentlapse.xray import cli

    text = GUIDE.read_text(encoding="utf-8")
    block = text.split("Every problem with a file is one line", 1)[1].split("```")[1]
    quotes = [line for line in block.splitlines() if line.startswith("main.py: error:")]
    assert len(quotes) == 3
    labels = ["AGN", "HM-STAR", "YSO", "LM-STAR"] * 5
    if case == "fields":  # unlabelled; line 17 one value short
        lines = [_spectra_line(i, None, 379 if i == 17 else 380) for i in range(1, 21)]
    elif case == "labels":
        lines = [_spectra_line(i, "QSO" if i in (3, 8) else labels[i - 1]) for i in range(1, 21)]
    else:  # one NS/HMXB/LMXB/NS_BIN source among the four classes
        lines = [_spectra_line(i, "NS" if i == 17 else labels[i - 1]) for i in range(1, 21)]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spectra.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    code = cli.train_main(["--data", "spectra.txt", "--epochs", "1", "--threads", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err == quotes[["fields", "labels", "class"].index(case)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spectra.txt"]
