"""Course support: what the notebooks in ``notebooks/`` share.

- ``refdense.course.checks``: the setup cell (``setup``), "check yourself" comparisons (``check``),
  the exercise checker (``check_exercise``) and ``show`` for figures.
- ``refdense.course.solutions``: reference solutions of the exercises (tested in
  ``tests/test_course.py``; a learner opens them after trying).
- ``refdense.course.execute``: ``python -m refdense.course.execute notebooks`` runs the notebooks
  top to bottom and stores their outputs (what ``make notebooks`` does).
- ``refdense.course.storage``: what a stored notebook keeps (no widget views or state; JupyterLab's
  save hook) and ``make restore-notebooks``.
"""
