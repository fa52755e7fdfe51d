"""Classify sources with a trained checkpoint: ``latentlapse predict``.

The file is read, classified and written a piece at a time (:mod:`latentlapse.xray.data.chunks`,
:mod:`latentlapse.core.prediction_writer`), so memory stays bounded however many sources a survey's
file holds; the network runs over each piece in batches of ``--batch_size`` rows.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

import numpy as np

from latentlapse.core import prediction_writer
from latentlapse.xray import checkpoints, distributed
from latentlapse.xray.data.dataset import Dataset
from latentlapse.xray.data.readers import is_pha_file
from latentlapse.xray.data.taxonomy import scheme
from latentlapse.core.errors import InputError, UsageError

log = logging.getLogger(__name__)

# Rows per forward pass: the CNN's activations for 256 spectra fit a core's L2 cache; 4,096 ran at
# under half the speed (bench/predict_scale.py, bench/README.md).
BATCH_SIZE = 256
AHEAD = 1  # pieces a stage may run ahead of the next
# The readers' note about a piece without labels ("... all 8192 sources read as unlabelled"),
# said once for the whole file instead of once per piece.
_UNLABELLED = re.compile(r"all \d+ sources read as unlabelled$")


def align_features(dataset: Dataset, payload: dict, data_path: str) -> np.ndarray:
    """Spectra as the model expects them: the same number of bins."""
    expected = payload["model_spec"]["n_features"]
    kind = payload["data"]["kind"]
    if dataset.kind != kind:  # a catalogue for a spectra model (the other way is refused by catalog_input)
        raise InputError(f"{data_path}: holds a catalogue, but the checkpoint's model was trained on spectra; give "
                         f"spectra (the text format, a spectra table or PHA files), or the checkpoint of a model "
                         f"trained on a catalogue")
    if dataset.n_features != expected:
        named = _bins_named(dataset, payload, data_path)
        fix = "give the file the bin columns the model was trained on" if named else "rebin them onto the same grid"
        raise InputError(f"{data_path}: spectra have {dataset.n_features} bins, the model expects {expected}"
                         f"{named}; {fix}")
    return dataset.X


def _bins_named(dataset: Dataset, payload: dict, data_path: str) -> str:
    """Which of the model's bin columns a table's header lacks, and which it has beyond them
    (the first few of each); nothing when the names do not overlap or come from no header."""
    from latentlapse.xray.data.chunks import file_kind

    model, found = list(payload.get("feature_names") or ()), list(dataset.feature_names)
    if file_kind(Path(data_path)) not in ("csv", "ecsv", "fits", "votable") or not set(model) & set(found):
        return ""
    parts = []
    for what, names, other in (("lacks the model's bin columns", model, set(found)),
                               ("has bin columns the model lacks", found, set(model))):
        extra = [n for n in names if n not in other]
        if extra:
            parts.append(f"{what} {', '.join(extra[:5])}{', ...' if len(extra) > 5 else ''} ({len(extra)})")
    return ": the file " + " and ".join(parts)


def inputs_of_file(payload: dict, data: str, label_column: str | None, notes: list[str] | None = None,
                   unknown_labels=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model inputs, ids and labels of the sources of ``data`` for a checkpoint's model.

    A catalogue is read through the checkpoint's feature schema (only its columns, its types,
    the training split's medians), so each source's inputs depend on that source alone. The
    reader's notes (e.g. PHA channels left out for their QUALITY flags) are logged, or added to
    ``notes`` for a caller that first decides whether the file can be used at all. Labels of no
    known class are refused, or, given ``unknown_labels`` (an ``UnknownLabels``), read as unlabelled.
    """
    from latentlapse.xray.data.readers import load_dataset

    if payload["data"]["kind"] == "catalog":
        from latentlapse.xray.data.catalog_input import read_with_schema

        schema = checkpoint_schema(payload)
        rows = read_with_schema(data, schema, label_column, unknown_labels)
        lines = [f"{data}: {note}" for note in rows.notes]
        result = schema.transform(rows.raw), rows.ids, rows.labels
    else:
        dataset = load_dataset(data, label_column=label_column, unknown_labels=unknown_labels)
        lines = [f"note: {note}" for note in (*dataset.notes, *(unknown_labels.notes() if unknown_labels else ()))]
        result = align_features(dataset, payload, data), dataset.ids, dataset.labels
    if notes is None:
        for line in lines:
            log.info("%s", line)
    else:
        notes.extend(lines)
    return result


class Labelled(NamedTuple):
    """The sources of a file with a label of a model's classes (``X``, ``y``), every source's
    label as read (``labels``; "" for none and for a label of no known class), the mask of those
    kept (``known``) and how many had a label of no known class (``n_unknown``)."""

    X: np.ndarray
    y: np.ndarray
    labels: np.ndarray
    known: np.ndarray
    n_unknown: int


def labelled_inputs(payload: dict, data: str, label_column: str | None, command: str, done: str) -> Labelled:
    """The sources of ``data`` with a label of the checkpoint's classes, for a command that needs
    labels (``evaluate``, ``visualize``). Labels of no known class are skipped with one note that
    ends in ``done`` (e.g. "scored"); a file without any usable label is a UsageError for ``command``."""
    from latentlapse.xray.data.spectra_checks import PHA_LABEL_HINT, UnknownLabels

    names = list(payload["class_names"])
    notes: list[str] = []
    unknown = UnknownLabels(data, f"skipped: only the model's classes are {done}")
    X_all, _, labels = inputs_of_file(payload, str(data), label_column, notes=notes, unknown_labels=unknown)
    y_all = scheme(len(names)).encode(labels)
    known = y_all >= 0
    if not known.any():  # one line: the reader's "read as unlabelled" note would only repeat it
        how = PHA_LABEL_HINT if Path(data).is_dir() or is_pha_file(data) else "a label column such as True_Class"
        raise UsageError(f"{data}: no source has a label of the model's classes ({', '.join(names)}); {command} needs "
                         f"a labelled file ({how}); use predict for unlabelled sources")
    for line in notes:
        log.info("%s", line)
    return Labelled(X_all[known], y_all[known], labels, known, unknown.count)


def checkpoint_schema(payload: dict):
    """The feature schema a catalogue checkpoint carries; older checkpoints had none."""
    from latentlapse.xray.data.schema import from_checkpoint

    schema = from_checkpoint(payload)
    if schema is None:
        raise InputError(f"the checkpoint (of {payload.get('run_dir', 'a run')}) was saved before catalogue models "
                         f"carried a feature schema; "
                         f"retrain the model with this version of latentlapse")
    return schema


def predict_logits(model, X: np.ndarray, batch_size: int) -> np.ndarray:
    """Logits of ``X``, ``batch_size`` rows at a time, in eval mode on the CPU."""
    import torch

    out = np.empty((len(X), model.head.out_features), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(X), batch_size):
            chunk = torch.from_numpy(np.ascontiguousarray(X[start:start + batch_size]))
            out[start:start + batch_size] = model(chunk).numpy()
    return out


def check_out_spares_data(out: str, data: str) -> None:
    """UsageError (exit 2) when writing ``out`` would replace the input: the ``data`` file itself,
    or a file already in the ``data`` folder, or, beside a PHA ``data`` file, the background and
    responses it names or another PHA spectrum (a file of earlier predictions may be replaced)."""
    out_path, data_path = Path(out), Path(data)
    if not os.path.lexists(out_path) or not data_path.exists():
        return
    if data_path.is_dir():
        if out_path.parent.resolve() == data_path.resolve():
            raise UsageError(f"--out {out}: would replace a file of the --data folder {data}; choose another --out")
    elif os.path.samestat(os.lstat(out_path), os.stat(data_path)):  # the entry os.replace swaps out is the data
        raise UsageError(f"--out {out}: is the --data file, which the predictions would overwrite; choose another --out")
    elif out_path.parent.resolve() == data_path.parent.resolve() and is_pha_file(data_path):
        from latentlapse.xray.data.pha import companion_files

        named = any(os.path.samestat(os.lstat(out_path), os.stat(f)) for f in companion_files(data_path) if f.exists())
        if named or is_pha_file(out_path):
            what = "a file the PHA --data file names (background, response)" if named else "another PHA spectrum"
            raise UsageError(f"--out {out}: would replace {what} beside {data}; choose another --out")


def predict_file(checkpoint: str, data: str, out: str, batch_size: int = BATCH_SIZE, priors: str = "balanced",
                 uncalibrated: bool = False) -> str:
    """Write one row per source of ``data`` (id, true class when labelled, prediction,
    probabilities) to ``out`` (CSV, JSON or FITS by suffix), a piece of the file at a time;
    returns a one-line summary.

    Probabilities are calibrated (unless ``uncalibrated``) and re-weighted to ``priors``
    (``train``, ``balanced``, ``model`` or ``NAME=VALUE,...``; see :mod:`latentlapse.xray.priors`).
    """
    from latentlapse.xray.config import TrainConfig
    from latentlapse.xray.operating import from_checkpoint

    if batch_size < 1:
        raise UsageError(f"--batch_size must be at least 1, got {batch_size}")
    prediction_writer.check_destination(out, "--out")
    check_out_spares_data(out, data)
    payload = checkpoints.load(checkpoint)
    point = from_checkpoint(payload, priors, uncalibrated)
    config = TrainConfig.from_dict(payload["config"])
    model = checkpoints.model_from_checkpoint(payload)
    names = payload["class_names"]
    encode = scheme(len(names)).encode

    import torch

    world = distributed.init_from_env("cpu")
    threads_before = torch.get_num_threads()
    torch.set_num_threads(network_threads(threads_before))
    try:
        scan = None
        if world is not None and payload["data"]["kind"] == "catalog":
            from latentlapse.xray.data.catalog_input import Scan

            from latentlapse.xray.data.spectra_checks import UnknownLabels

            # the ranks' scans are checked together
            scan = Scan(Path(data), checkpoint_schema(payload), UnknownLabels(data))

        def pieces(span=None):
            """Three stages that overlap: reading the next piece, the network on this one, and
            (the caller) writing the last; torch and numpy release the GIL while they compute."""
            read = ahead(input_pieces(payload, data, config.label_column, span=span, scan=scan))
            return ahead((ids, encode(labels), point.proba(predict_logits(model, X, batch_size)))
                         for X, ids, labels in read)

        # which model and which probabilities, kept with FITS output (CSV and JSON rows have no place)
        about = {"CHECKPNT": str(Path(checkpoint).resolve()), "PROBS": point.describe()}
        if world is None:
            path, n, counts = prediction_writer.write_stream(Path(out), pieces(), names, about)
        else:
            from latentlapse.xray.predict_parts import predict_in_parts

            path, n, counts = predict_in_parts(world, Path(out), data, pieces, scan, names, about)
    finally:
        torch.set_num_threads(threads_before)
        distributed.shutdown(world)
    if world is not None and not world.is_main:
        return ""  # rank 0 alone reports
    log.info("probabilities: %s", point.describe())
    summary = ", ".join(f"{name} {count}" for name, count in zip(names, counts))
    return f"{n} sources classified -> {path} ({summary})"


def network_threads(current: int) -> int:
    """Intra-op threads for the network while the reader and the writer run beside it: all
    cores but one, unless OMP_NUM_THREADS says otherwise (torchrun sets 1 per process). On two
    cores, two threads for the network with the pipeline beside it took 3-4x the CPU time of one
    (bench/README.md)."""
    import os

    from latentlapse.core.threads import usable_cores

    if os.environ.get("OMP_NUM_THREADS"):
        return current
    return max(usable_cores() - 1, 1)


def input_pieces(payload: dict, data: str, label_column: str | None, span: slice | None = None, scan=None):
    """(inputs, ids, labels) of the file's sources a piece of
    :data:`~latentlapse.xray.data.chunks.CHUNK_ROWS` at a time; ``span`` keeps one contiguous stretch
    of the file's rows (a torchrun rank's share). A catalogue streams through the checkpoint's
    feature schema (``scan`` gathers what its whole-file checks need, see
    :func:`~latentlapse.xray.data.catalog_input.iter_with_schema`)."""
    from latentlapse.xray.data import chunks

    if payload["data"]["kind"] == "catalog":
        from latentlapse.xray.data.catalog_input import iter_with_schema

        schema = checkpoint_schema(payload)
        for rows in iter_with_schema(data, schema, label_column, chunks.CHUNK_ROWS, span=span, scan=scan):
            yield schema.transform(rows.raw), rows.ids, rows.labels
        return
    from latentlapse.xray.data.spectra_checks import UnknownLabels

    shown: set[str] = set()
    unlabelled, rows, pieces = [], 0, 0
    unknown = UnknownLabels(data)  # predict needs no labels: those of no known class are counted, once
    for piece in chunks.iter_chunks(data, label_column=label_column, span=span, unknown_labels=unknown):
        features = align_features(piece, payload, data)  # first: a file the model cannot take gets no notes
        for note in piece.notes:  # e.g. PHA channels left out for their QUALITY flags
            if _UNLABELLED.search(note):
                unlabelled.append(note)  # said once for the whole file, below
            elif note not in shown:
                shown.add(note)
                log.info("note: %s", note)
        rows, pieces = rows + len(piece), pieces + 1
        yield features, piece.ids, piece.labels
    if unlabelled and len(unlabelled) == pieces:  # every piece unlabelled: the file is
        whole = f"all {rows} sources{' of this process' if span is not None else ''} read as unlabelled"
        log.info("note: %s", _UNLABELLED.sub(whole, unlabelled[0]))
    for note in unknown.notes():
        log.info("note: %s", note)


def ahead(items: Iterable, depth: int = AHEAD) -> Iterator:
    """``items`` made in a background thread, at most ``depth`` ahead of the consumer.

    An exception in the thread is raised in the consumer after the items made before it; when
    the consumer stops early (an error, Ctrl-C), the thread stops after its current item.
    """
    import queue
    import threading

    box: queue.Queue = queue.Queue(maxsize=depth)
    stop, end = threading.Event(), object()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                box.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            put((end, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="predict-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = box.get()
            if item is end:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join()
