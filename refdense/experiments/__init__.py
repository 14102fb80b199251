"""Experiments: recipes built on the training engine (:mod:`refdense.train`), one module each.

- :mod:`refdense.experiments.demo`: the main job (RefDense and PAT on the synthetic ``default``).
- :mod:`refdense.experiments.ablate`: the paper's ablation tables over seeds, bounded by the probe.
- :mod:`refdense.experiments.sweep`: a component's gain against a mechanism dial of the synthetic data.
- :mod:`refdense.experiments.study`: a registered study's decisions, read from its sweeps.
- :mod:`refdense.experiments.probe`: ridge readouts of the input features, the bound of every table.
- :mod:`refdense.experiments.launch`: fitting many runs, one after another, at once, or on Slurm.

Each has its subcommand (``refdense demo``, ``ablate``, ``sweep``, ``study``, ``probe``) and its
readable top-level function; importing the package loads none of them.
"""
