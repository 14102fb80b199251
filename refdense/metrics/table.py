"""The papers' table: per-frame mAP and, for each ``tau``, the action-conditional metrics, in markdown."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from refdense.metrics.ap import FrameMAP, percent, pool, pooled_frame_map
from refdense.metrics.conditional import ActionConditional, pooled_action_conditional, thread_pool
from refdense.metrics.validation import Lengths, Videos, check_tau_threshold


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.2f}"


@dataclass(frozen=True)
class PaperTable:
    """What the papers print: per-frame mAP and, for each tau, mAP_ac, F1_ac, P_ac, R_ac."""

    frame_map: FrameMAP
    conditional: dict[int, ActionConditional]

    def to_dict(self) -> dict:
        """``{"frame_map", "frame_map_present", "tau_0": {...}, ...}``, in percent (None for NaN)."""
        result: dict[str, object] = {
            "frame_map": percent(self.frame_map.map_all),
            "frame_map_present": percent(self.frame_map.map_present),
        }
        for tau, ac in self.conditional.items():
            result[f"tau_{tau}"] = ac.to_dict()
        return result

    def to_markdown(self) -> str:
        """A markdown table (aligned, so it also reads as plain text), values in percent."""
        return compare_markdown({"": self})

    def __str__(self) -> str:
        return self.to_markdown()


_AC_COLUMNS = ("mAP_ac", "F1_ac", "P_ac", "R_ac")


def compare_markdown(tables: Mapping[str, PaperTable]) -> str:
    """Several methods side by side: one row per method, values in percent.

    tables: ``{"RefDense": table, "PAT": other}``; all must use the same taus.
    """
    if not tables:
        raise ValueError("compare_markdown: expected at least one table, found none")
    taus = list(next(iter(tables.values())).conditional)
    for name, table in tables.items():
        if list(table.conditional) != taus:
            raise ValueError(
                f"compare_markdown: table {name!r} has taus {list(table.conditional)}, expected {taus}"
            )
    header = ["Method", "mAP", "mAP (present)"]
    header += [f"{column} (tau={tau})" for tau in taus for column in _AC_COLUMNS]
    rows = []
    for name, table in tables.items():
        row = [name or "(this run)", _fmt(table.frame_map.map_all), _fmt(table.frame_map.map_present)]
        for tau in taus:
            row += [_fmt(getattr(table.conditional[tau], column)) for column in _AC_COLUMNS]
        rows.append(row)
    widths = [max(len(r[k]) for r in [header] + rows) for k in range(len(header))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(header, widths)) + " |"]
    lines.append(
        "|" + "|".join("-" * (w + 1) + ":" if k else "-" * (w + 2) for k, w in enumerate(widths)) + "|"
    )
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(row[1:], widths[1:])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paper_table(
    scores: Videos,
    labels: Videos,
    lengths: Lengths = None,
    taus: Sequence[int] = (0, 20),
    threshold: float = 0.5,
) -> PaperTable:
    """The table the papers print: per-frame mAP and, for each tau, the action-conditional metrics.

    Inputs as in :func:`frame_map`; the inputs are validated and pooled once.
    """
    taus = list(taus)
    for tau in taus:
        check_tau_threshold(tau, threshold)
    if len(set(taus)) != len(taus):
        raise ValueError(f"taus: expected distinct values, found {taus}")
    pooled = pool(scores, labels, lengths)
    with thread_pool() as executor:
        frame = executor.submit(pooled_frame_map, pooled)  # runs beside the conditional metrics' jobs
        conditional = {
            int(tau): pooled_action_conditional(pooled, int(tau), threshold, executor) for tau in taus
        }
        return PaperTable(frame_map=frame.result(), conditional=conditional)
