"""Per-frame cost and frame-to-frame steadiness of the time-lapse, on real snapshots of a run.

Recording: the guide's run (built-in data, 4 classes, 150 epochs, oversampling to 1.0, seed 42)
is trained once with a recorder callback that keeps, at every epoch the time-lapse draws
(``--viz_every 10``: 19 epochs), exactly what ``TrainingVisualizer`` would send the worker —
the fixed sample's penultimate features (500 training + 300 validation sources, 64 columns),
predictions and scores — into ``bench/out/snapshots_*.npz``. Later invocations reuse the file
(``--record`` records again; about a minute).

Measuring, in this process, with the worker's settings (one thread for BLAS/OpenMP/numba): the
worker's own ``_FrameState`` draws the sequence into a temporary folder, and its per-frame
timings are printed — projection, metrics, rendering (with the layout file) and end to end
(also the progress table, the metrics row and the warm-start state). Target for t-SNE: <= 0.5 s
per frame (median) for 800 points.

Coherence of a sequence: ``projection.displacement`` between consecutive frames — the mean
distance moved by the same points after rotating/reflecting the frame onto the previous one,
divided by the RMS distance of the points from their centroid — and its median over the 18
steps. Ours (each frame warm-started from the previous one) against an independent fit per
frame on the same points: a fresh openTSNE fit from a PCA initialisation with the run's fixed
seed (our own first-frame path, and the default of openTSNE and scikit-learn: "the usual way"),
one from a random initialisation with the same seed (the same random start every frame), and,
for information, one from a random initialisation with a new seed per frame. Targets: ours
<= 0.10 and at least 3x lower than the independent fits (the fixed-seed ones are the strict
test). UMAP (fresh fits from its spectral initialisation) and PCA are measured for information.
The yardstick: how far the features themselves moved between frames, measured the same way in
their own 64-D space (each frame centred and scaled to unit RMS radius, rotated onto the
previous one by orthogonal Procrustes). A map that moves much less than that hides change the
model really made.

Run: ``python bench/frames.py [--record] [--methods tsne umap pca]`` (about 2 minutes with a
recording present, 3 without).

Large maps: ``python bench/frames.py --sizes 5000 20000 50000 [--methods tsne umap pca]`` draws,
for each size n, a first frame and a warm-started second frame of n training + 0.6 n validation
points (the default samples' ratio) with the worker's own code: the points are resampled from the
last two recorded frames' features (the same rows and noise in both, so the second frame moves
as the real run did). It prints wall seconds per stage and the process's CPU seconds per frame
(one thread: what one idle core would take, whatever else the machine runs). Target: a warm
t-SNE frame of 20,000 points <= 15 s on one core.
"""

from __future__ import annotations

import os
import sys

if "--record-to" not in sys.argv:  # the worker's settings, before numpy loads
    for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[_name] = "1"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from unittest import mock  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median_range, table  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
TARGET_FRAME_S = 0.5
TARGET_COHERENCE = 0.10
TARGET_FACTOR = 3.0
TARGET_LARGE_S = 15.0
TARGET_LARGE_N = 20000


# ------------------------------------------------------------------------------------ recording
def record(path: Path, epochs: int, every: int, seed: int) -> None:
    """Train the guide's run and save what the visualiser would send at each drawn epoch."""
    import logging

    from latentlapse.core.timelapse.snapshot import with_scores
    from latentlapse.xray.config import TrainConfig, VizConfig
    from latentlapse.xray.experiment import build_trainer
    from latentlapse.xray.prepare import prepare
    from _common import collecting_visualizer

    logging.basicConfig(level=logging.WARNING)
    config = TrainConfig(classes=4, epochs=epochs, oversample_target=1.0, seed=seed,
                         viz=VizConfig(enabled=True, every=every))
    prepared = prepare(config)
    with tempfile.TemporaryDirectory() as folder:
        recorder = collecting_visualizer(Path(folder), config, prepared, "tsne")
        trainer = build_trainer(prepared, callbacks=[recorder])
        trainer.fit()
        collected = recorder.worker
        recorder.on_train_end(trainer, "interrupted")  # waits for the dynamics writes; no end-of-run outputs
    spec = collected.spec
    s = [with_scores(x, spec.class_names) for x in collected.snapshots]  # the worker computes scores, as here
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path, epochs=np.array([x.epoch for x in s]), total_epochs=epochs, seed=spec.seed,
        train_features=np.stack([x.train_features for x in s]), val_features=np.stack([x.val_features for x in s]),
        val_pred=np.stack([x.val_pred for x in s]), val_pred_all=np.stack([x.val_pred_all for x in s]),
        val_true_all=s[0].val_true_all, scores=np.array([[x.scores[k] for k in SCORE_KEYS] for x in s]),
        class_names=np.array(spec.class_names), colors=np.array(spec.colors), markers=np.array(spec.markers),
        train_ids=spec.train_ids.astype(str), val_ids=spec.val_ids.astype(str),
        train_labels=spec.train_labels, val_labels=spec.val_labels,
    )


SCORE_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "val_balanced_acc", "val_macro_f1", "lr")


def load(path: Path, method: str, run_dir: str):
    """The recorded spec (for ``method``, writing into ``run_dir``) and snapshots."""
    from latentlapse.core.timelapse.snapshot import Snapshot, TimelapseSpec

    with np.load(path) as data:
        z = {key: data[key] for key in data.files}  # decompress each array once
    spec = TimelapseSpec(
        run_dir=run_dir, class_names=tuple(z["class_names"]), colors=tuple(z["colors"]),
        markers=tuple(z["markers"]), method=method, total_epochs=int(z["total_epochs"]), seed=int(z["seed"]),
        train_ids=z["train_ids"], val_ids=z["val_ids"], train_labels=z["train_labels"], val_labels=z["val_labels"],
    )
    snapshots = [
        Snapshot(epoch=int(e), train_features=z["train_features"][i], val_features=z["val_features"][i],
                 val_pred=z["val_pred"][i], val_true_all=z["val_true_all"], val_pred_all=z["val_pred_all"][i],
                 scores=dict(zip(SCORE_KEYS, map(float, z["scores"][i]))))
        for i, e in enumerate(z["epochs"])
    ]
    return spec, snapshots


# ------------------------------------------------------------------------------------ measuring
def draw_sequence(path: Path, method: str):
    """The worker's own frame code over the recorded sequence: (start-up s, timings, metrics rows)."""
    from latentlapse.core.timelapse.worker import _FrameState

    with tempfile.TemporaryDirectory(prefix="frames-") as run_dir:
        spec, snapshots = load(path, method, run_dir)
        state = _FrameState()
        start = time.perf_counter()
        state.start(spec)  # UMAP: imports umap and warms its kernels up, as the worker does
        started = time.perf_counter() - start
        timings, rows = [], []
        for snapshot in snapshots:
            message = state.draw(snapshot)
            if message[0] != "frame":
                raise SystemExit(f"{method}: {message}")
            rows.append(message[3])
            timings.append(message[4])
    return started, timings, rows


def independent_displacements(path: Path, method: str, init: str, new_seeds: bool = False):
    """Every frame fitted from scratch, with the run's fixed seed (or a new seed per frame):
    (displacements, projection seconds)."""
    from openTSNE import initialization

    from latentlapse.core.timelapse import projection

    spec, snapshots = load(path, method, tempfile.gettempdir())

    def random_start(X, n_components=2, random_state=None, **_):
        return initialization.random(len(X), n_components, random_state=random_state)

    patch = mock.patch.object(initialization, "pca", random_start) if init == "random" else contextlib.nullcontext()
    moves, seconds, previous = [], [], None
    with patch:
        for index, snapshot in enumerate(snapshots):
            seed = spec.seed + index if new_seeds else spec.seed
            start = time.perf_counter()
            layout = projection.project(snapshot.train_features, snapshot.val_features, method, None, seed)
            seconds.append(time.perf_counter() - start)
            if previous is not None:
                moves.append(projection.displacement(previous, layout))
            previous = layout
    return moves, seconds


def feature_displacements(path: Path) -> list[float]:
    """Mean movement of the sample's points in feature space between consecutive frames, after
    centring, scaling to unit RMS radius and the best rotation onto the previous frame."""
    from scipy.linalg import orthogonal_procrustes

    with np.load(path) as data:
        frames = [np.vstack([t, v]).astype(np.float64) for t, v in zip(data["train_features"], data["val_features"])]

    def unit(points: np.ndarray) -> np.ndarray:
        centred = points - points.mean(axis=0)
        return centred / np.sqrt(np.mean(np.sum(centred**2, axis=1)))

    moves = []
    for before, after in zip(frames, frames[1:]):
        old, new = unit(before), unit(after)
        rotation, _ = orthogonal_procrustes(new, old)
        moves.append(float(np.mean(np.linalg.norm(new @ rotation - old, axis=1))))
    return moves


def large_frames(path: Path, method: str, n_train: int, n_val: int):
    """A first and a warm frame of ``n_train`` + ``n_val`` resampled points: [(timing, cpu s)]."""
    from latentlapse.core.timelapse.snapshot import Snapshot
    from latentlapse.core.timelapse.worker import _FrameState

    generator = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="frames-large-") as run_dir:
        spec, snapshots = load(path, method, run_dir)
        rows = {"train": generator.integers(0, len(spec.train_ids), n_train),
                "val": generator.integers(0, len(spec.val_ids), n_val)}
        pair = snapshots[-2:]
        noise = {side: generator.normal(scale=0.1, size=(len(index), pair[0].train_features.shape[1]))
                 for side, index in rows.items()}

        def resampled(snapshot, side):
            features = getattr(snapshot, f"{side}_features")
            return (features[rows[side]] + noise[side] * features.std(axis=0)).astype(np.float32)

        spec = dataclasses.replace(
            spec, train_ids=np.arange(n_train).astype(str), val_ids=np.arange(n_val).astype(str),
            train_labels=spec.train_labels[rows["train"]], val_labels=spec.val_labels[rows["val"]])
        state = _FrameState()
        state.start(spec)
        results = []
        for snapshot in pair:
            big = Snapshot(epoch=snapshot.epoch, train_features=resampled(snapshot, "train"),
                           val_features=resampled(snapshot, "val"), val_pred=snapshot.val_pred[rows["val"]],
                           val_true_all=snapshot.val_true_all, val_pred_all=snapshot.val_pred_all,
                           scores=snapshot.scores)
            cpu = time.process_time()
            message = state.draw(big)
            if message[0] != "frame":
                raise SystemExit(f"{method}, {n_train} points: {message}")
            results.append((message[4], time.process_time() - cpu))
    return results


def main_sizes(path: Path, sizes: list[int], methods: list[str]) -> None:
    """Seconds per frame of maps of ``sizes`` training points (and 0.6 as many validation points)."""
    lines, verdict = [], None
    for n in sizes:
        n_val = int(0.6 * n)
        for method in methods:
            (first, first_cpu), (warm, warm_cpu) = large_frames(path, method, n, n_val)
            lines.append([n, n_val, method, f"{first['total']:.1f}", f"{first_cpu:.1f}", f"{warm['project']:.1f}",
                          f"{warm['metrics']:.1f}", f"{warm['render']:.1f}", f"{warm['total']:.1f}",
                          f"{warm_cpu:.1f}"])
            print(table(["train", "val", "method", "first s", "first cpu s", "warm project s", "warm metrics s",
                         "warm render s", "warm s", "warm cpu s"], lines[-1:]), flush=True)
            if method == "tsne" and n == TARGET_LARGE_N:
                verdict = (f"warm t-SNE frame of {n} points: {warm_cpu:.1f} CPU s on one thread "
                           f"({'met' if warm_cpu <= TARGET_LARGE_S else 'MISSED'} <= {TARGET_LARGE_S:.0f} s), "
                           f"{warm['total']:.1f} s wall")
    print()
    print(table(["train", "val", "method", "first s", "first cpu s", "warm project s", "warm metrics s",
                 "warm render s", "warm s", "warm cpu s"], lines))
    print("s: wall seconds on this (shared) machine; cpu s: this single-threaded process's CPU seconds")
    if verdict:
        print("target: " + verdict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="record the snapshots again (about a minute)")
    parser.add_argument("--methods", nargs="+", default=["tsne", "umap", "pca"], choices=["tsne", "umap", "pca"])
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--viz_every", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--sizes", nargs="+", type=int,
                        help="large maps: training points per map (e.g. 5000 20000 50000)")
    parser.add_argument("--record-to", dest="record_to", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.record_to:
        record(Path(args.record_to), args.epochs, args.viz_every, args.seed)
        return

    path = OUT / f"snapshots_e{args.epochs}_every{args.viz_every}_seed{args.seed}.npz"
    if args.record or not path.exists():
        print(f"recording {path.name}: the guide's run, {args.epochs} epochs, snapshots at the drawn epochs ...",
              flush=True)
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                                 "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}
        start = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--record-to", str(path), "--epochs", str(args.epochs),
                        "--viz_every", str(args.viz_every), "--seed", str(args.seed)], env=env, check=True)
        print(f"  recorded in {time.perf_counter() - start:.0f} s", flush=True)
    if args.sizes:
        main_sizes(path, args.sizes, args.methods)
        return
    z = np.load(path)
    n_frames, n_train, dim = z["train_features"].shape
    print(f"sequence {path.relative_to(OUT.parent.parent)}: {n_frames} frames (epochs {', '.join(map(str, z['epochs']))}), "
          f"{n_train} training + {z['val_features'].shape[1]} validation points, {dim} features; one thread", flush=True)

    summary, verdicts = [], []
    for method in args.methods:
        started, timings, rows = draw_sequence(path, method)
        ours = [r["displacement"] for r in rows[1:]]
        later = timings[1:]
        # an independent fit from the method's own first-frame start: PCA for t-SNE, spectral for UMAP
        fresh = {{"umap": "spectral"}.get(method, "pca"): independent_displacements(path, method, "pca")}
        if method == "tsne":
            fresh["random"] = independent_displacements(path, method, "random")
            fresh["random, new seed"] = independent_displacements(path, method, "random", new_seeds=True)
        print(f"\n{method}: worker start {started:.2f} s; first frame (a full fit) {timings[0]['total']:.2f} s "
              f"(projection {timings[0]['project']:.2f} s)")
        header = ["epoch", "project s", "metrics s", "render s", "end to end s", "moved (ours)"]
        header += [f"moved (fresh, {init} init)" for init in fresh]
        lines = []
        for i, (timing, row) in enumerate(zip(timings, rows)):
            line = [row["epoch"], f"{timing['project']:.3f}", f"{timing['metrics']:.3f}", f"{timing['render']:.3f}",
                    f"{timing['total']:.3f}", "-" if i == 0 else f"{row['displacement']:.3f}"]
            line += ["-" if i == 0 else f"{moves[i - 1]:.3f}" for moves, _ in fresh.values()]
            lines.append(line)
        print(table(header, lines))
        median_total = statistics.median(t["total"] for t in later)
        ours_median = statistics.median(ours)
        line = [method, median_range([t["project"] for t in later]), median_range([t["metrics"] for t in later]),
                median_range([t["render"] for t in later]), median_range([t["total"] for t in later]),
                f"{ours_median:.3f}"]
        for init, (moves, seconds) in fresh.items():
            factor = statistics.median(moves) / ours_median
            line.append(f"{statistics.median(moves):.3f} ({factor:.1f}x; fit {statistics.median(seconds):.2f} s)")
            if method == "tsne":
                verdicts.append(f"{factor:.1f}x steadier than fresh fits from {init} init"
                                f"{'' if 'seed' in init else ', same seed'} "
                                f"({'met' if factor >= TARGET_FACTOR else 'MISSED'})")
        line += [""] * (3 - len(fresh))
        summary.append(line)
        if method == "tsne":
            verdicts.insert(0, f"t-SNE frame end to end {median_total:.3f} s "
                               f"({'met' if median_total <= TARGET_FRAME_S else 'MISSED'}), coherence {ours_median:.3f} "
                               f"({'met' if ours_median <= TARGET_COHERENCE else 'MISSED'})")
    print()
    print(table(["method", "project s", "metrics s", "render s", "end to end s", "coherence (ours)",
                 "independent, first-frame init (t-SNE: PCA; UMAP: spectral)", "independent, random init",
                 "independent, random init, new seeds"],
                summary))
    print("frames after the first, median (min-max); coherence: median over consecutive frames of mean displacement "
          "/ RMS radius, after alignment")
    features = feature_displacements(path)
    print(f"the features themselves (64-D, same normalisation) moved a median {statistics.median(features):.3f} per "
          f"step ({', '.join(f'{m:.3f}' for m in features)}): a faithful map cannot be much steadier than that")
    if verdicts:
        print(f"targets: end to end <= {TARGET_FRAME_S} s, coherence <= {TARGET_COHERENCE} and >= {TARGET_FACTOR:.0f}x "
              f"lower than independent fits: " + "; ".join(verdicts))


if __name__ == "__main__":
    main()
