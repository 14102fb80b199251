"""The training configuration: YAML round trip, overrides, strict checks, the shipped configs."""

from __future__ import annotations

import pytest

from refdense.train.config import CONFIGS, ConfigError, TrainConfig, diff, load_config


def test_round_trip_through_yaml(tmp_path):
    config = TrainConfig().with_overrides("optim.lr=3e-4", "model.strides=[2, 4]", "loss.colv_sets=[motion]")
    config.save(tmp_path / "config.yaml")
    loaded = load_config(tmp_path / "config.yaml")
    assert loaded == config
    assert diff(loaded, TrainConfig()) == ["loss.colv_sets", "model.strides", "optim.lr"]


def test_overrides_parse_yaml_values_and_later_files_win(tmp_path):
    (tmp_path / "a.yaml").write_text("optim:\n  lr: 1e-4\n  epochs: 5\nrun: {seed: 3}\n")
    (tmp_path / "b.yaml").write_text("optim: {epochs: 7}\n")
    config = load_config(tmp_path / "a.yaml", tmp_path / "b.yaml",
                         overrides=["optim.grad_clip=1", "run.compile=true", "model.inputs=null", "data.dataset=x/y"])
    assert config.optim.lr == pytest.approx(1e-4)  # "1e-4" is a string for PyYAML; accepted as a float
    assert config.optim.epochs == 7 and config.run.seed == 3
    assert config.optim.grad_clip == 1.0 and isinstance(config.optim.grad_clip, float)
    assert config.run.compile is True and config.model.inputs is None and config.data.dataset == "x/y"


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lrr=1", "unknown key optim.lrr; did you mean optim.lr?"),
        ("optm.lr=1", "unknown key optm; did you mean optim?"),
        ("model.dimm=8", "did you mean model.dim?"),
        ("optim.epochs=2.5", "optim.epochs must be an integer, found 2.5"),
        ("run.compile=yes please", "run.compile must be true or false"),
        ("run.precision=fp16", "run.precision must be one of 'auto', 'bf16', 'fp32', found 'fp16'"),
        ("optim.lr=-1", "optim.lr must be a number > 0"),
        ("data.validation_fraction=1", "data.validation_fraction must be a number in [0, 1)"),
        ("model.strides=[3]", "strides"),
        ("data.window=512", "data.window (512) is longer than model.max_len (256)"),
        ("optim", "expected KEY=VALUE"),
        ("optim.lr=inf", "--set optim.lr=inf: optim.lr must be a finite number, found 'inf'"),
        ("optim.lr=.nan", "optim.lr must be a finite number, found nan"),
        ("optim.gamma=1e400", "optim.gamma must be a finite number"),
        ("optim.grad_clip=" + "9" * 400, "optim.grad_clip must be a finite number"),
        ("run.seed=-1", "--set run.seed=-1: run.seed must be an integer in [0, 2**63), found -1"),
        ("run.seed=" + str(2**63), "run.seed must be an integer in [0, 2**63)"),
        ("run.device=gpu", "--set run.device=gpu: run.device must be 'auto', 'cpu', 'cuda' or 'cuda:N', found 'gpu'"),
        ("run.device=cuda:x", "run.device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    ],
)
def test_bad_values_are_named(override, message):
    with pytest.raises(ConfigError, match=None) as caught:
        TrainConfig().with_overrides(override)
    assert message in str(caught.value)


def test_errors_name_the_file_or_the_set_they_come_from(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("run:\n  seed: -3\n")
    with pytest.raises(ConfigError, match=r"run\.yaml: run\.seed .*found -3"):
        load_config(path)
    path.write_text("optim:\n  lr: .inf\nrun: {device: tpu}\n")
    with pytest.raises(ConfigError, match=r"run\.yaml: optim\.lr must be a finite number, found inf"):
        load_config(path)
    path.write_text("run: {seed: 1}\n")
    with pytest.raises(ConfigError, match=r"^--set run\.device=cuda:one: run\.device must be"):
        load_config(path, overrides=["optim.lr=1e-3", "run.device=cuda:one"])


def test_a_mapping_in_set_merges_into_the_section(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("optim: {epochs: 7, batch_size: 3}\n")
    config = load_config(path, overrides=["optim={lr: 3e-4, epochs: 9}"])
    assert (config.optim.lr, config.optim.epochs, config.optim.batch_size) == (pytest.approx(3e-4), 9, 3)
    changed = TrainConfig().with_overrides("optim.batch_size=2", "optim={lr: 0.01}")
    assert diff(changed, TrainConfig()) == ["optim.batch_size", "optim.lr"]


def test_unknown_key_in_a_file_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("loss:\n  colv_weigth: 0.5\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: .*loss\.colv_weigth.*loss\.colv_weight\?"):
        load_config(path)
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize("name", ["charades", "multithumos", "synthetic"])
def test_shipped_recipes_load(name):
    config = load_config(CONFIGS / f"{name}.yaml")
    assert config.optim.lr == pytest.approx(1e-4 if name != "synthetic" else 1e-3)
    assert config.data.validation_fraction > 0  # model selection never looks at the test split


def test_paper_recipes_match_section_4():
    charades, multithumos = load_config(CONFIGS / "charades.yaml"), load_config(CONFIGS / "multithumos.yaml")
    assert (charades.optim.batch_size, charades.optim.epochs, charades.optim.step_size) == (5, 25, 7)
    assert (multithumos.optim.batch_size, multithumos.optim.epochs, multithumos.optim.step_size) == (3, 300, 130)
    assert charades.optim.gamma == multithumos.optim.gamma == pytest.approx(0.1)
    assert (charades.model.blocks, multithumos.model.blocks) == (3, 4)
    assert (charades.model.fine_weight, multithumos.model.fine_weight) == (pytest.approx(0.1), pytest.approx(0.2))
    assert charades.data.window == multithumos.data.window == 256


def test_pat_baseline_trains_with_the_published_pat_recipe():
    # Train_PAT_Charades.py: ASL(coarse) + 0.1 ASL(fine); Train_PAT_MultiTHUMOS.py: ASL(coarse) + ASL(fine)
    for recipe, fine_head_weight in (("charades", 0.1), ("multithumos", 1.0)):
        pat = load_config(CONFIGS / f"{recipe}.yaml", CONFIGS / "ablations" / "pat.yaml")
        assert pat.model.arch == "pat"
        assert (pat.loss.classification, pat.loss.action_heads) == ("asymmetric", "separate")
        assert pat.loss.fine_head_weight == pytest.approx(fine_head_weight)
        assert (pat.loss.asl_gamma_neg, pat.loss.asl_gamma_pos, pat.loss.asl_clip) == (3, 1, pytest.approx(0.05))
        assert load_config(CONFIGS / f"{recipe}.yaml").loss.action_heads == "fused"  # RefDense: Eq. 4 on P


@pytest.mark.parametrize("path", sorted((CONFIGS / "ablations").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_ablation_applies_on_every_recipe(path):
    for recipe in ("charades", "multithumos", "synthetic"):
        base = load_config(CONFIGS / f"{recipe}.yaml")
        ablated = load_config(CONFIGS / f"{recipe}.yaml", path)
        assert diff(base, ablated) or path.stem == "full", f"{path.name} changes nothing on {recipe}"


def test_configs_paths_name_the_shipped_recipes_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ here: the package's recipes are read
    shipped = load_config(CONFIGS / "synthetic.yaml", CONFIGS / "ablations" / "pat.yaml")
    assert load_config("configs/synthetic.yaml", "configs/ablations/pat.yaml") == shipped
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "synthetic.yaml").write_text("optim: {epochs: 3}\n")
    assert load_config("configs/synthetic.yaml").optim.epochs == 3  # a file of the current folder wins
    with pytest.raises(ConfigError, match=r"cannot read config file .*\(the recipes shipped with refdense: .*"
                                          r"configs/ablations/pat\.yaml.*configs/synthetic\.yaml\)"):
        load_config("configs/synthetics.yaml")


def test_the_benchmark_recipe_is_the_synthetic_one_with_three_changes_and_the_final_checkpoint():
    # docs/EXPERIMENTS.md, "The benchmark recipe": chosen on validation, one knob at a time
    synthetic, benchmark = load_config(CONFIGS / "synthetic.yaml"), load_config(CONFIGS / "benchmark.yaml")
    assert diff(synthetic, benchmark) == ["model.input_dropout", "optim.epochs", "optim.step_size", "run.test_checkpoint"]
    assert (benchmark.model.input_dropout, benchmark.optim.epochs, benchmark.optim.step_size) == (0.0, 30, 20)
    assert benchmark.run.test_checkpoint == "last" and synthetic.run.test_checkpoint == "best"
