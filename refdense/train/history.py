"""A run's per-epoch records (``metrics.jsonl``) and the rules read from them: the epoch that
validation selects and the early-stopping rule of ``run.patience``.

Each record is one JSON object per line: ``epoch`` (1-based), ``lr``, ``train`` (mean loss terms),
``steps``, ``train_seconds``, ``seconds`` and, on validated epochs, ``val: {"map": ...}`` (percent).
"""

from __future__ import annotations

import json
from pathlib import Path

from refdense.io import atomic_write

HISTORY_FILE = "metrics.jsonl"


def read_history(run_dir: Path) -> list[dict]:
    """The records of ``run_dir/metrics.jsonl`` (an empty list before the first epoch)."""
    path = Path(run_dir) / HISTORY_FILE
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}, line {number}: not a JSON record ({error.msg})") from None
    return records


def write_history(run_dir: Path, history: list[dict]) -> None:
    """Replace ``run_dir/metrics.jsonl`` with ``history``, atomically."""
    with atomic_write(Path(run_dir) / HISTORY_FILE) as handle:
        for record in history:
            handle.write(json.dumps(record) + "\n")


def best_epoch(history: list[dict]) -> int | None:
    """The epoch validation selects (the first with the highest validation mAP); None without validation."""
    validated = [record for record in history if "val" in record]
    return max(validated, key=lambda record: record["val"]["map"])["epoch"] if validated else None


def stalled(history: list[dict], patience: int | None, min_epochs: int = 0) -> bool:
    """The early-stopping rule: after at least ``min_epochs`` epochs, the best validation epoch is
    ``patience`` or more epochs behind the last one (never without ``patience`` or validation)."""
    if patience is None or len(history) < max(min_epochs, 1):
        return False
    best = best_epoch(history)
    return best is not None and history[-1]["epoch"] - best >= patience
