"""The guide's signs of good progress, read from the first and the last frame of a run.

Clusters tightening (class spread relative to the distances between classes), classes moving
apart (each pair's distance relative to its spread) and validation errors falling (counts on the
full split). Spread and distances are judged as ratios, which do not change when the network
merely rescales its whole feature space; the raw numbers are quoted as the guide quotes them.
Each reading is a :class:`Finding` — ``good`` when it holds, ``info`` when it does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from latentlapse.core.timelapse.runfiles import Row

# Kaufman & Rousseeuw: a silhouette of 0.25 or less means "no substantial structure". The one
# constant behind the diagnosis and the "structure" line of metrics.png.
SILHOUETTE_FORMED = 0.25
# Per-epoch validation scores on a few hundred sources jitter by several per cent; a centred
# 5-epoch mean removes most of it and still places a turning point within about 2 epochs.
SMOOTH_EPOCHS = 5

# Tightening is judged on spread / centroid distance, which is blind to the network rescaling its
# whole feature space; a 10 % fall is well beyond the frame-to-frame jitter of this ratio
# (about 2-5 % between consecutive frames of a converged run).
TIGHTEN_MIN_DROP = 0.10
# A pair of classes "moved apart" when its distance divided by the pair's mean spread grew 10 %
# (same scale-free reasoning); the reading holds when more than half of the pairs did.
SEPARATE_MIN_GAIN = 0.10
# Errors "fall" when the full-split count drops by 10 % and by at least 3 sources, so that one
# or two sources flipping on a small split is not called progress.
ERRORS_MIN_DROP = 0.10
ERRORS_MIN_COUNT = 3


@dataclass(frozen=True)
class Finding:
    """One reading: what was seen (title), the numbers behind it, and what to do about it."""

    kind: str
    severity: str  # "good", "warning" or "info" (a reading that could not be made or did not hold)
    title: str
    evidence: tuple[str, ...] = ()
    remedy: str = ""
    values: dict = field(default_factory=dict)


def apart(value: float, bar: float, digits: int = 2) -> tuple[str, str]:
    """``value`` and the threshold ``bar`` it was checked against, printed with ``digits`` decimals
    or as many more (up to 6) as it takes to tell them apart, so a failed check never reads as equal."""
    for d in range(digits, 7):
        shown = f"{value:.{d}f}", f"{bar:.{d}f}"
        if shown[0] != shown[1]:
            break
    return shown


def smooth(values: np.ndarray, window: int = SMOOTH_EPOCHS) -> np.ndarray:
    """Centred moving average (NaN-ignoring); the window shrinks at the ends."""
    values = np.asarray(values, dtype=np.float64)
    half = window // 2
    out = np.full(len(values), np.nan)
    for i in range(len(values)):
        part = values[max(0, i - half): i + half + 1]
        part = part[np.isfinite(part)]
        if part.size:
            out[i] = part.mean()
    return out


def readings(frames: list[Row], names: list[str], short: list[str]) -> list[Finding]:
    """Clusters tightening, classes moving apart, errors falling: first frame against last."""
    if not frames:
        return []
    if len(frames) < 2:
        return [Finding("trends_unseen", "info", "Trends need at least two frames",
                        (f"frames drawn: epoch {int(frames[0]['epoch'])}",))]
    return [_tightening(frames, names, short), _moving_apart(frames, names, short), _errors(frames)]


def _tightening(frames: list[Row], names: list[str], short: list[str]) -> Finding:
    first, last = frames[0], frames[-1]
    r0, r1 = first.get("spread_ratio", math.nan), last.get("spread_ratio", math.nan)
    evidence = [f"Epoch {int(f['epoch'])}: Spread = {f.get('spread_mean', math.nan):.2f} units "
                f"= {f.get('spread_ratio', math.nan):.2f} × the mean distance between class centres" for f in _milestones(frames)]
    evidence.append("per class, first → last: " + ", ".join(
        f"{n} {first.get(f'spread_{s}', math.nan):.2f} → {last.get(f'spread_{s}', math.nan):.2f}" for n, s in zip(names, short)))
    values = {"spread_ratio_first": r0, "spread_ratio_last": r1, "spread_first": first.get("spread_mean"),
              "spread_last": last.get("spread_mean"), "epoch_first": int(first["epoch"]), "epoch_last": int(last["epoch"])}
    if not (math.isfinite(r0) and math.isfinite(r1) and r0 > 0):
        return Finding("clusters_tightening", "info", "Cluster spread could not be measured", tuple(evidence), values=values)
    change = r1 / r0 - 1
    scale = (last["spread_mean"] / r1) / (first["spread_mean"] / r0)  # growth of the mean centroid distance
    values.update(spread_ratio_change=change, feature_scale_change=scale)
    s0, s1 = first["spread_mean"], last["spread_mean"]
    raw = "rose" if s1 > s0 else "fell"
    evidence.append(f"the raw spread {raw} {s0:.2f} → {s1:.2f} while the mean distance between class centres went "
                    f"{s0 / r0:.2f} → {s1 / r1:.2f} (×{scale:.2f}): the network rescales its whole feature space as it "
                    f"trains, so raw spread and cluster tightness can move apart; relative to the distances between "
                    f"classes the spread changed {change:+.0%}, and that ratio decides")
    if change <= -TIGHTEN_MIN_DROP:
        return Finding("clusters_tightening", "good", "Clusters tightening over time", tuple(evidence), values=values)
    return Finding("clusters_tightening", "info", "Clusters not tightening (relative to the distances between classes)",
                   tuple(evidence), values=values)


def _moving_apart(frames: list[Row], names: list[str], short: list[str]) -> Finding:
    first, last = frames[0], frames[-1]
    pairs = []
    for i in range(len(short)):
        for j in range(i + 1, len(short)):
            key = f"dist_{short[i]}__{short[j]}"
            s0, s1 = _separation(first, key, short[i], short[j]), _separation(last, key, short[i], short[j])
            if math.isfinite(s0) and math.isfinite(s1) and s0 > 0:
                pairs.append((s1 / s0 - 1, i, j, first[key], last[key]))
    values = {"pairs": len(pairs), "pairs_apart": sum(g >= SEPARATE_MIN_GAIN for g, *_ in pairs)}
    if not pairs:
        return Finding("classes_moving_apart", "info", "Distances between classes could not be measured", values=values)
    e0, e1 = int(first["epoch"]), int(last["epoch"])
    moving_apart = 2 * values["pairs_apart"] > len(pairs)
    # the example shown is the pair that best supports the verdict: the one that gained most
    # when classes are moving apart, else the one that gained least (the first on ties)
    pick = max if moving_apart else min
    gain, i, j, d0, d1 = pick(pairs, key=lambda pair: pair[0])
    s0 = _separation(first, f"dist_{short[i]}__{short[j]}", short[i], short[j])
    evidence = [f"Epoch {e0}: {names[i]} ↔ {names[j]} distance = {d0:.1f} ({s0:.1f} × their spread)",
                f"Epoch {e1}: {names[i]} ↔ {names[j]} distance = {d1:.1f} ({s0 * (1 + gain):.1f} × their spread)",
                f"{values['pairs_apart']} of {len(pairs)} class pairs moved apart relative to their spread "
                f"(distance ÷ mean spread up at least {SEPARATE_MIN_GAIN:.0%}); raw distances grow whenever the network "
                f"rescales its whole feature space, so a pair counts only when its distance grows faster than its spread"]
    closer = [f"{names[i]} ↔ {names[j]} ({g:+.0%})" for g, i, j, *_ in sorted(pairs) if g <= -SEPARATE_MIN_GAIN]
    if closer:
        evidence.append("came closer: " + ", ".join(closer))
    values.update(example_pair=f"{names[i]} ↔ {names[j]}", distance_first=d0, distance_last=d1, separation_gain=gain)
    if moving_apart:
        return Finding("classes_moving_apart", "good", "Classes moving apart", tuple(evidence), values=values)
    return Finding("classes_moving_apart", "info", "Classes not moving apart (relative to their spread)",
                   tuple(evidence), values=values)


def _separation(row: Row, key: str, a: str, b: str) -> float:
    """Distance between two class centres divided by the pair's mean spread (scale-free)."""
    spread = (row.get(f"spread_{a}", math.nan) + row.get(f"spread_{b}", math.nan)) / 2
    distance = row.get(key, math.nan)
    return distance / spread if spread > 0 else math.nan


def _errors(frames: list[Row]) -> Finding:
    first, last = frames[0], frames[-1]
    n0, n1, total = first.get("val_errors", math.nan), last.get("val_errors", math.nan), last.get("val_total", math.nan)
    if not (math.isfinite(n0) and math.isfinite(n1)):
        return Finding("errors_falling", "info", "Validation errors were not counted")
    evidence = tuple(f"Epoch {int(f['epoch'])}: {int(f['val_errors'])} errors of {int(f.get('val_total', total))} "
                     f"validation sources (the frames mark the sample's as red X's)" for f in _milestones(frames))
    values = {"errors_first": int(n0), "errors_last": int(n1), "val_total": total,
              "epoch_first": int(first["epoch"]), "epoch_last": int(last["epoch"])}
    if n0 - n1 >= max(ERRORS_MIN_COUNT, ERRORS_MIN_DROP * n0):
        return Finding("errors_falling", "good", "Misclassifications decreasing", evidence, values=values)
    return Finding("errors_falling", "info", "Misclassifications not decreasing", evidence, values=values)


def _milestones(frames: list[Row]) -> list[Row]:
    """First, middle and last frame (the guide quotes three epochs)."""
    picks = sorted({0, len(frames) // 2, len(frames) - 1})
    return [frames[i] for i in picks]
