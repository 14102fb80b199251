"""Course support: what the notebooks in ``notebooks/`` share.

- ``refdense.course.checks``: the first code cell (``start_notebook``), "check yourself" comparisons (``check``),
  the exercise checker (``check_exercise``) and ``show`` for figures.
- ``refdense.course.solutions``: reference solutions of the exercises (tested in
  ``tests/test_course.py``; a learner opens them after trying).
- ``refdense.course.execute``: ``python -m refdense.course.execute notebooks`` runs the notebooks
  top to bottom and stores their outputs (what ``make notebooks`` does).
- ``refdense.course.storage``: what a stored notebook keeps (no widget views or state; JupyterLab's
  save hook) and ``make restore-notebooks``.
- ``refdense.course.results``: the precomputed files the notebooks load (the MiniLM text bank, the
  demo's trained RefDense and PAT predictions with their histories) and the command that remakes them.
- ``refdense.course.full_run``: the guards of notebook 09's ``full`` profile (which models, no CPU
  unless allowed, a prepared dataset or a clear error, a pre-flight estimate of time and memory).
"""
