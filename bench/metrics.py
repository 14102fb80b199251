"""Time ``refdense.metrics.paper_table`` (mAP; tau 0 and 20) on dataset-sized random inputs.

    python bench/metrics.py [--repeat 3] [--only charades|multithumos]

Labels are made of random action instances with the test-split statistics of docs/METHOD.md, section 6
(instances per video, durations, active classes per segment, a skewed class frequency);
scores are float32 probabilities that are mildly informative. Prints seconds (best of
``--repeat``; wall clock and the process's CPU time over all threads), the peak memory that the
call allocates (tracemalloc; numpy reports its buffers to it) and the process's peak resident set.
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import numpy as np

from refdense.metrics import paper_table

# videos, mean segments per video, classes, instances per video, median instance length (segments)
SIZES = {
    "charades": dict(videos=1863, segments=112, classes=157, instances=9, duration=70),
    "multithumos": dict(videos=213, segments=1000, classes=65, instances=95, duration=13),
}


def random_dataset(videos, segments, classes, instances, duration, seed=0):
    """Lists of (T_v, C) float32 scores and uint8 labels with instance-shaped labels."""
    rng = np.random.default_rng(seed)
    class_weights = 1.0 / np.arange(1, classes + 1) ** 0.8  # a few frequent classes
    class_weights /= class_weights.sum()
    scores, labels = [], []
    for _ in range(videos):
        length = max(8, int(rng.normal(segments, segments / 4)))
        y = np.zeros((length, classes), dtype=np.uint8)
        count = rng.poisson(instances)
        starts = rng.integers(0, length, count)
        lengths = np.maximum(1, rng.lognormal(np.log(duration), 0.8, count).astype(int))
        for c, s, n in zip(rng.choice(classes, count, p=class_weights), starts, lengths):
            y[s : s + n, c] = 1
        noise = rng.random((length, classes), dtype=np.float32)
        scores.append((0.6 * noise + 0.4 * y * rng.random((length, classes), dtype=np.float32)).astype(np.float32))
        labels.append(y)
    return scores, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=sorted(SIZES))
    args = parser.parse_args()
    for name, size in SIZES.items():
        if args.only and name != args.only:
            continue
        scores, labels = random_dataset(**size)
        frames = sum(len(s) for s in scores)
        active = sum(int(y.sum()) for y in labels) / frames
        times, cpu = [], []
        for _ in range(args.repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            table = paper_table(scores, labels)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        tracemalloc.start()
        paper_table(scores, labels)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        pairs = {tau: ac.pairs for tau, ac in table.conditional.items()}
        print(
            f"{name}: {len(scores)} videos, {frames} segments, {size['classes']} classes, "
            f"{active:.2f} active per segment, kept pairs {pairs}\n"
            f"  paper_table: best {min(times):.2f} s of {args.repeat} ({', '.join(f'{t:.2f}' for t in times)}), "
            f"CPU time (all threads) {min(cpu):.2f} s; "
            f"peak allocated {peak / 2**20:.0f} MiB; process peak RSS {rss:.0f} MiB"
        )
        print(table.to_markdown())


if __name__ == "__main__":
    main()
