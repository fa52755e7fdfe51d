"""Whole-catalogue prediction: spectra per second and peak memory of ``latentlapse predict``.

Input: simulated spectra written in chunks, so the files are never in memory whole — 600
spectra are simulated once (``simulate_dataset``, seed 7) and every row of a file is one of them
with fresh Poisson noise for its counts (new id, same format), written 10,000 rows at a time to
the text format and to a FITS binary table (a 380-element float32 vector column, net counts and
an id). Sizes: 50,000, 200,000 and 500,000 rows by default. ``--formats catalog``: a synthetic
catalogue CSV (flux, optical magnitude with gaps, hardness ratio, a t/f flag) classified by a
1-epoch catalogue model through its feature schema.

Measured: ``latentlapse predict --checkpoint C --data FILE --out OUT.csv`` as a child process
(a fresh interpreter: import, checkpoint, read, classify, write): wall seconds, spectra per
second end to end, the child's CPU seconds and its peak RSS (GNU ``time``'s maximum resident size).
The checkpoint is a 1-epoch CNN trained on the 600 spectra (the network's cost does not depend
on its weights). Targets: peak RSS flat across sizes (within 10 %) and <= 1 GB; >= 20,000
spectra/s from FITS. The files are removed at the end (500,000 text rows are ~1.9 GB).

Run: ``python bench/predict_scale.py [--sizes 50000 200000 500000] [--formats text fits]
[--ranks 1 2] [--dir D]`` (minutes: writing the files dominates); ``--ranks 2`` also runs each
file under ``torchrun --nproc_per_node 2``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import quiet_logs, table  # noqa: E402

WRITE_ROWS = 10_000
TARGET_RSS_MB = 1024
TARGET_FLAT = 0.10
TARGET_FITS_RATE = 20_000


def base_spectra(n: int = 600):
    from latentlapse.xray.data.simulate import simulate_dataset

    return simulate_dataset(n=n, seed=7)


def pieces(base, n: int, seed: int = 0):
    """(ids, spectra, counts) of ``n`` rows, ``WRITE_ROWS`` at a time: base rows re-drawn with
    Poisson noise at their own counts, each normalised to sum 1."""
    generator = np.random.default_rng(seed)
    for start in range(0, n, WRITE_ROWS):
        size = min(WRITE_ROWS, n - start)
        pick = generator.integers(0, len(base), size)
        counts = base.counts[pick]
        expected = base.X[pick].astype(np.float64) * counts[:, None]
        noisy = generator.poisson(np.clip(expected, 0, None)).astype(np.float64) + 1e-3
        spectra = (noisy / noisy.sum(axis=1, keepdims=True)).astype(np.float32)
        ids = np.array([f"BENCH{start + i:08d}" for i in range(size)])
        yield ids, spectra, counts


def write_text(path: Path, base, n: int) -> None:
    row_format = " ".join(["%.6g"] * base.n_features)
    with open(path, "w") as handle:
        for ids, spectra, counts in pieces(base, n):
            handle.write("\n".join(f"{i} {row_format % tuple(s.tolist())} {int(c)}"
                                   for i, s, c in zip(ids, spectra, counts)) + "\n")


def write_fits(path: Path, base, n: int) -> None:
    """A FITS binary table written row block by row block under a header that already says n."""
    from astropy.io import fits

    k = base.n_features
    columns = [fits.Column(name="src_id", format="16A"), fits.Column(name="spectrum", format=f"{k}E"),
               fits.Column(name="net_counts", format="D")]
    header = fits.BinTableHDU.from_columns(columns, nrows=0).header
    header["NAXIS2"] = n
    dtype = np.dtype([("src_id", "S16"), ("spectrum", ">f4", (k,)), ("net_counts", ">f8")])
    with open(path, "wb") as handle:
        handle.write(fits.PrimaryHDU().header.tostring().encode("ascii"))
        handle.write(header.tostring().encode("ascii"))
        for ids, spectra, counts in pieces(base, n):
            records = np.zeros(len(ids), dtype=dtype)
            records["src_id"], records["spectrum"], records["net_counts"] = np.char.encode(ids), spectra, counts
            handle.write(records.tobytes())
        handle.write(b"\0" * (-(n * dtype.itemsize) % 2880))


CATALOG_HEADER = "src_name,Fs,Gmag,hr,var,label"


def catalog_rows(n: int, seed: int = 0):
    """CSV lines of a synthetic catalogue, ``WRITE_ROWS`` at a time: AGN (bright X-rays, faint
    optical) and LM stars; a third of the optical magnitudes missing, a t/f flag column."""
    generator = np.random.default_rng(seed)
    for start in range(0, n, WRITE_ROWS):
        size = min(WRITE_ROWS, n - start)
        agn = (np.arange(start, start + size) % 2) == 0
        flux = 10 ** generator.normal(np.where(agn, -13.0, -14.5), 0.4)
        gmag = generator.normal(np.where(agn, 20.0, 14.0), 1.0)
        hr = generator.normal(np.where(agn, 0.3, -0.4), 0.2)
        var = generator.random(size) < np.where(agn, 0.2, 0.7)
        gone = generator.random(size) < 0.3
        yield [f"S{start + i:08d},{flux[i]:.4g},{'' if gone[i] else f'{gmag[i]:.3f}'},{hr[i]:.3f},"
               f"{'t' if var[i] else 'f'},{'AGN' if agn[i] else 'LM-STAR'}" for i in range(size)]


def write_catalog(path: Path, n: int) -> None:
    with open(path, "w") as handle:
        handle.write(CATALOG_HEADER + "\n")
        for lines in catalog_rows(n):
            handle.write("\n".join(lines) + "\n")


def catalog_checkpoint(folder: Path) -> Path:
    """A 1-epoch catalogue model (MLP through a feature schema) on 2,000 synthetic sources."""
    from latentlapse.xray import pipeline
    from latentlapse.xray.config import TrainConfig

    data = folder / "train_catalog.csv"
    write_catalog(data, 2000)
    config = TrainConfig(data=str(data), classes=2, epochs=1, device="cpu", runs_dir=str(folder / "catalog_runs"),
                         features=("Fs", "Gmag", "hr", "var"))
    return pipeline.train(config).run_dir / "best.pt"


def checkpoint(folder: Path, base) -> Path:
    from latentlapse.xray import pipeline
    from latentlapse.xray.config import TrainConfig
    from latentlapse.xray.data.writers import write_dataset

    data = folder / "train.txt"
    write_dataset(data, base)
    result = pipeline.train(TrainConfig(data=str(data), epochs=1, device="cpu", runs_dir=str(folder / "runs")))
    return result.run_dir / "best.pt"


def measure(ckpt: Path, data: Path, out: Path, ranks: int = 1) -> dict[str, float]:
    """Run predict in a child (under torchrun with ``ranks`` > 1); wall s, CPU s (all processes)
    and peak RSS (MB, the largest process).

    The child runs under GNU ``time``: a child forked straight from this process would inherit
    its resident size (torch and a trained model, ~640 MB) as the starting high-water mark of
    ``ru_maxrss``, hiding the predict process's own peak.
    """
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks)]
    command = [*(launcher if ranks > 1 else [sys.executable]), "-m", "latentlapse", "predict", "--checkpoint",
               str(ckpt), "--data", str(data), "--out", str(out), "--quiet"]
    report = out.with_suffix(".time")
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", str(report), *command], stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"predict failed on {data}")
    rss_kb, user, system = report.read_text().split()[-3:]
    return {"wall": wall, "cpu": float(user) + float(system), "rss": float(rss_kb) / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[50_000, 200_000, 500_000])
    parser.add_argument("--formats", nargs="+", default=["text", "fits"], choices=["text", "fits", "catalog"])
    parser.add_argument("--dir", help="where to write the files (default: a temporary folder)")
    parser.add_argument("--ranks", nargs="+", type=int, default=[1],
                        help="processes per predict: 1 is a plain run, more run it under torchrun")
    args = parser.parse_args()
    quiet_logs()
    folder = Path(tempfile.mkdtemp(prefix="predict-scale-", dir=args.dir))
    try:
        base = base_spectra()
        checkpoints = {"spectra": checkpoint(folder, base)}
        if "catalog" in args.formats:
            checkpoints["catalog"] = catalog_checkpoint(folder)
        lines, results = [], {}
        for fmt in args.formats:
            ckpt = checkpoints["catalog" if fmt == "catalog" else "spectra"]
            for n in args.sizes:
                data = folder / f"{fmt}_{n}.{ {'text': 'txt', 'fits': 'fits', 'catalog': 'csv'}[fmt]}"
                start = time.perf_counter()
                if fmt == "catalog":
                    write_catalog(data, n)
                else:
                    (write_text if fmt == "text" else write_fits)(data, base, n)
                written = time.perf_counter() - start
                size_mb = data.stat().st_size / 2**20
                for ranks in args.ranks:
                    r = measure(ckpt, data, folder / "out.csv", ranks)
                    results[fmt if ranks == 1 else f"{fmt} x{ranks}", n] = r
                    lines.append([fmt if ranks == 1 else f"{fmt} x{ranks}", n, f"{size_mb:.0f}", f"{written:.0f}",
                                  f"{r['wall']:.1f}", f"{n / r['wall']:.0f}", f"{r['cpu']:.1f}", f"{n / r['cpu']:.0f}",
                                  f"{r['rss']:.0f}", f"{os.getloadavg()[0]:.1f}"])
                    print(table(["input", "rows", "file MB", "write s", "predict s", "spectra/s", "cpu s",
                                 "spectra/cpu-s", "peak RSS MB", "load"], lines[-1:]), flush=True)
                data.unlink()
        print()
        print(table(["input", "rows", "file MB", "write s", "predict s", "spectra/s", "cpu s", "spectra/cpu-s",
                     "peak RSS MB", "load"], lines))
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall numbers are of a shared machine)")
        verdicts = []
        for fmt in sorted({key for key, _ in results}):
            rss = [results[fmt, n]["rss"] for n in args.sizes]
            spread = (max(rss) - min(rss)) / min(rss)
            verdicts.append(f"{fmt}: peak RSS {min(rss):.0f}-{max(rss):.0f} MB, spread {spread:.1%} "
                            f"({'met' if spread <= TARGET_FLAT and max(rss) <= TARGET_RSS_MB else 'MISSED'})")
        if "fits" in args.formats:
            best = max(n / r["wall"] for (fmt, n), r in results.items() if fmt.startswith("fits"))
            verdicts.append(f"FITS {best:.0f} spectra/s wall ({'met' if best >= TARGET_FITS_RATE else 'MISSED'} "
                            f">= {TARGET_FITS_RATE})")
        print("targets: " + "; ".join(verdicts))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
