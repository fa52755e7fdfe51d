"""Wall time of the built-in simulator on the default 2730-source set (target: ≤ 2 s).

Run: ``python bench/simulate_time.py [--repeats 5]``. One warm-up call first builds the cached
response matrix, as any process that simulates more than once would.
"""

from __future__ import annotations

import argparse
import statistics
import time

from latentlapse.xray.data.simulate import simulate_dataset

TARGET_S = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    start = time.perf_counter()
    simulate_dataset()
    first = time.perf_counter() - start
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        simulate_dataset()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"simulate_dataset() default 2730 sources: first call {first:.2f} s (builds the response), "
          f"median of {args.repeats} after {median:.2f} s (min {min(times):.2f}, max {max(times):.2f}); "
          f"target <= {TARGET_S:.1f} s: {'met' if median <= TARGET_S else 'MISSED'}")


if __name__ == "__main__":
    main()
