"""The project's GPU check in one command: environment, correctness on CUDA, speed, DDP, notebook 09.

    python bench/gpu_check.py [--out DIR] [--budget 480] [--smoke] [--only PART ...] [--bank DIR]

Written for the device machine of this workplace (one H100/H200, Python 3.12, torch 2.11, no
network, 16 cores), to finish within ``--budget`` seconds (default 480, 8 minutes). Each part runs
in a child process of its own under a time limit (the smaller of its own and what is left of the
budget), so a crash, a hang or a CUDA error of one part is recorded and the next one still runs:

- ``environment``: GPU, driver, torch, CUDA, cuDNN, free GPU memory, CPU count, package versions.
- ``correctness``: the golden PAT test in float64 on CUDA (``tests/fixtures/pat_reference_small.npz``,
  through ``tests/test_models_golden.py``'s loader, to 1e-9); one training step of the Charades
  recipe (random batch) on the CPU and on CUDA in float32, TF32 off (loss and gradients compared);
  the same step under bf16 autocast on CUDA (finite, and within the bf16 tolerance below of
  float32); padding invariance (a video alone vs padded into a longer batch); which
  ``scaled_dot_product_attention`` kernel the model's attention with its position bias runs.
- ``speed``, ``speed_compile``: ``bench/gpu_train.py`` (the Charades recipe on ``charades-like``,
  batch 5, T 256) for 2 epochs without and with ``torch.compile``: steps/s, epoch time, the test
  split's evaluation time, peak memory, achieved TFLOP/s against the GPU's dense bf16 peak, and the
  25-epoch recipe's time extrapolated. Figures are kept after every epoch, so a part stopped by its
  time limit still reports the epochs it finished.
- ``torchrun``: ``torchrun --nproc_per_node 1`` training the tiny preset through ``refdense train``
  (NCCL on CUDA, gloo on a CPU).
- ``notebook09``: notebook 09 executed (``refdense.course.execute``) with ``REFDENSE_PROFILE=full``,
  RefDense only, one epoch (``REFDENSE_EPOCHS=1``) on the dataset the speed part generated; needs
  nbclient and ipykernel, which the device image lacks (they travel as wheels: README, section GPU).
- ``jobs``: several study runs at once on the GPU would be measured here if ``refdense`` had a
  ``--jobs`` option; it has none, which the summary records.

Everything goes under ``$OUT`` (else ``--out``): ``summary.json``, ``summary.md``, ``log.txt`` (every
part's output) and the executed ``09_full_training.ipynb``. Generated data and runs go to a scratch
folder (``--work``, default a temporary folder) that is removed at the end. ``--smoke`` runs every
part on the CPU in a couple of minutes at tiny sizes (the ``tiny`` preset, a small model); the
comparisons that need CUDA (CPU vs CUDA) are skipped there with the reason recorded, and
``torch.compile`` uses the ``aot_eager`` backend (dynamo and AOT autograd; inductor's C++ builds
take over 5 minutes on a 2-core CPU).

A text bank of the ``minilm`` encoder for ``charades-like`` (its weights, 88 MB, cannot travel to the
device) is made here with ``--make-bank DIR`` and read from ``--bank DIR`` there; without one the
runs use the ``random`` encoder, which costs the same per step (the bank is computed once).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("environment", "correctness", "speed", "speed_compile", "torchrun", "notebook09", "jobs")
PART_SECONDS = {  # each part's own limit on the GPU; what is left of the budget caps it too
    "environment": 30, "correctness": 90, "speed": 150, "speed_compile": 150, "torchrun": 45, "notebook09": 120,
    "jobs": 30,
}
SMOKE_SECONDS = {"environment": 60, "correctness": 300, "speed": 180, "torchrun": 120, "notebook09": 400,
                 "speed_compile": 300, "jobs": 60}  # a 2-core CPU shared with other jobs: generous
BF16_PEAK_TFLOPS = {"H100 PCIe": 756.0, "H100 NVL": 835.0, "H100": 989.4, "H200": 989.4}
"""Dense bf16 tensor-core peaks (NVIDIA's data sheets, without sparsity), by a name's substring;
the first match in this order wins (the SXM H100 reports itself as 'NVIDIA H100 80GB HBM3')."""
RECIPE_EPOCHS = 25  # configs/charades.yaml
STEP_TOLERANCE = {"loss_rel": 1e-4, "grad_rel": 1e-3}  # CPU vs CUDA, float32, TF32 off
BF16_TOLERANCE = {"loss_rel": 3e-2, "grad_cosine": 0.98}  # bf16 autocast vs float32, same device
PADDING_TOLERANCE = 1e-4  # float32, max abs difference of the logits on the valid segments
GOLDEN_TOLERANCE = 1e-9  # float64, as tests/test_models_golden.py
NOTEBOOK = "09_full_training.ipynb"
ATTENTION_WORDS = ("scaled_dot_product", "attention", "fmha", "flash", "sdpa")  # aten operators, CUDA kernels


# ---------------------------------------------------------------------------------------------
# Arithmetic and the summary (pure; tests/test_gpu_check.py)


def bf16_peak_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU by its name (``torch.cuda.get_device_name``); None when unknown."""
    for key, peak in BF16_PEAK_TFLOPS.items():
        if key in device_name:
            return peak
    return None


def achieved_tflops(gmacs_per_window: float, batch_size: int, steps_per_second: float) -> float:
    """Training TFLOP/s: forward FLOPs (2 per MAC) of a batch times 3 (forward + backward, which
    costs about twice the forward) times steps per second. Counts what ``complexity`` counts
    (matrix products and convolutions), not the element-wise work."""
    return 2 * gmacs_per_window * 1e9 * batch_size * 3 * steps_per_second / 1e12


def extrapolate(history: list[dict], epochs: int = RECIPE_EPOCHS) -> float | None:
    """Seconds of ``epochs`` epochs (training and validation) from measured ones: the first epoch as
    measured (it holds the warm-up: compilation, cuDNN choices, the page cache), each further epoch
    at the mean of the later measured ones. None without a measured epoch after the first."""
    if len(history) < 2:
        return None
    later = [r["seconds"] for r in history[1:]]
    return history[0]["seconds"] + (epochs - 1) * sum(later) / len(later)


def speed_figures(run: dict) -> dict:
    """The speed part's figures from ``bench/gpu_train.py``'s JSON: steady steps/s and epoch time
    (the last epoch's), TFLOP/s and its share of the bf16 peak, the 25-epoch extrapolation."""
    history = run["history"]
    figures: dict = {"epochs_done": len(history)}
    if history:
        last = history[-1]
        steps_per_second = last["steps"] / last["train_seconds"]
        tflops = achieved_tflops(run["gmacs_per_window"], run["batch_size"], steps_per_second)
        peak = bf16_peak_tflops(run.get("device", ""))
        figures.update(steps_per_second=steps_per_second, epoch_train_seconds=last["train_seconds"],
                       epoch_seconds=last["seconds"], first_epoch_seconds=history[0]["seconds"],
                       tflops=tflops, share_of_bf16_peak=tflops / peak if peak else None)
    figures["recipe_seconds_extrapolated"] = extrapolate(history)
    for key in ("dataset_seconds", "test_eval_seconds", "test_videos", "peak_allocated_gib", "peak_reserved_gib",
                "gmacs_per_window", "text_encoder", "test_map"):
        if key in run:
            figures[key] = run[key]
    return figures


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value).replace("|", "/").replace("\n", " ")


def summary_markdown(report: dict) -> str:
    """The report as markdown: the environment, then one row per part (status, seconds, figures)."""
    lines = [f"# GPU check ({'smoke, CPU' if report['smoke'] else 'full'}), {report['started']}", ""]
    environment = report["parts"].get("environment", {}).get("result", {})
    if environment:
        lines += ["| environment | |", "|---|---|"]
        lines += [f"| {key} | {_cell(value)} |" for key, value in environment.items()]
        lines.append("")
    lines += ["| part | status | seconds | figures / note |", "|---|---|---:|---|"]
    for name, part in report["parts"].items():
        if name == "environment":
            figures = ""
        else:
            figures = "; ".join(f"{key} {_cell(value)}" for key, value in part.get("result", {}).items()
                                if not isinstance(value, (dict, list)))
        note = part.get("note", "")
        lines.append(f"| {name} | {part['status']} | {part['seconds']:.1f} | {_cell(figures)}"
                     f"{' — ' + _cell(note) if note else ''} |")
        for check, outcome in part.get("result", {}).items():
            if isinstance(outcome, dict):
                lines.append(f"| {name}: {check} | {outcome.get('status', '')} | | "
                             f"{_cell('; '.join(f'{k} {_cell(v)}' for k, v in outcome.items() if k != 'status'))} |")
    lines += ["", f"whole check: {report['seconds']:.0f} s of a budget of {report['budget']:.0f} s"]
    return "\n".join(lines) + "\n"


def write_summary(out: Path, report: dict) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``summary.md`` into ``out`` (each atomically); return their paths."""
    from refdense.io import atomic_write

    paths = out / "summary.json", out / "summary.md"
    with atomic_write(paths[0]) as handle:
        json.dump(report, handle, indent=1)
    with atomic_write(paths[1]) as handle:
        handle.write(summary_markdown(report))
    return paths


# ---------------------------------------------------------------------------------------------
# The parts (each runs in a child process: python bench/gpu_check.py --part NAME ...)


def _module(path: Path, name: str):  # noqa: ANN202 - a module object
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def part_environment(args: argparse.Namespace) -> dict:
    import torch

    result: dict = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
                    "cpus": os.cpu_count(), "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        properties = torch.cuda.get_device_properties(0)
        result.update(gpu=torch.cuda.get_device_name(), gpus=torch.cuda.device_count(),
                      multiprocessors=properties.multi_processor_count, cudnn=torch.backends.cudnn.version(),
                      free_gib=free / 2**30, total_gib=total / 2**30,
                      bf16_peak_tflops=bf16_peak_tflops(torch.cuda.get_device_name()))
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,memory.used",
                                  "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
            result["nvidia_smi"] = smi.stdout.strip()
    from importlib import metadata

    for package in ("numpy", "h5py", "triton", "nbclient", "ipykernel", "platformdirs", "sentence-transformers"):
        try:
            result[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            result[package] = "missing"
    return result


def _recipe_step(device, smoke: bool):  # noqa: ANN001, ANN202 - torch types imported late
    """``bench/train_step.py``'s RefDense step (Charades recipe, seeded weights) and a random batch."""
    import torch

    train_step = _module(ROOT / "bench" / "train_step.py", "train_step")
    from refdense.train import distributed

    step = train_step.OurStep("refdense", "fp32", distributed.Context(rank=0, world_size=1, device=device))
    for module in step.runner.modules():  # training mode (the auxiliary heads run) without dropout:
        if isinstance(module, torch.nn.Dropout):  # the same function on every device
            module.p = 0.0
    torch.manual_seed(1)
    batch = train_step.random_batch(1 if smoke else 5, 48 if smoke else 256, torch.device("cpu"))
    return step.runner, batch


def _to(batch, device):  # noqa: ANN001, ANN202
    import dataclasses

    import torch

    return dataclasses.replace(batch, **{f.name: getattr(batch, f.name).to(device) for f in dataclasses.fields(batch)
                                         if isinstance(getattr(batch, f.name), torch.Tensor)})


def _loss_and_grads(runner, batch, bf16: bool):  # noqa: ANN001, ANN202
    import torch

    runner.zero_grad(set_to_none=True)
    device = next(runner.parameters()).device
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        total = runner(batch).total
    total.float().backward()
    grads = {name: p.grad.detach().double().cpu() for name, p in runner.named_parameters() if p.grad is not None}
    return float(total.detach()), grads


def check_golden(device) -> dict:  # noqa: ANN001
    import numpy as np
    import torch

    golden_test = _module(ROOT / "tests" / "test_models_golden.py", "test_models_golden")
    with np.load(golden_test.FIXTURE, allow_pickle=False) as data:
        golden = {name: data[name] for name in data.files}
    model = golden_test.reference_pat(golden).to(device)
    video = torch.from_numpy(golden["input"]).to(device)
    with torch.no_grad():
        out = model(video, None, torch.ones(video.shape[:2], dtype=torch.bool, device=device))
    errors = {name: float(np.abs(getattr(out, name).cpu().numpy() - golden[name]).max())
              for name in ("fine_logits", "coarse_logits")}
    worst = max(errors.values())
    return {"status": "passed" if worst <= GOLDEN_TOLERANCE else "failed", "device": str(device),
            "max_abs_error": worst, "tolerance": GOLDEN_TOLERANCE}


def check_cpu_vs_cuda(smoke: bool) -> dict:
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    runner, batch = _recipe_step(torch.device("cpu"), smoke)
    cpu_loss, cpu_grads = _loss_and_grads(runner, batch, bf16=False)
    cuda_loss, cuda_grads = _loss_and_grads(runner.to("cuda"), _to(batch, "cuda"), bf16=False)
    loss_rel = abs(cuda_loss - cpu_loss) / abs(cpu_loss)
    grad_rel = max(float((cuda_grads[n] - g).abs().max() / g.abs().max().clamp_min(1e-30)) for n, g in cpu_grads.items())
    passed = loss_rel <= STEP_TOLERANCE["loss_rel"] and grad_rel <= STEP_TOLERANCE["grad_rel"]
    return {"status": "passed" if passed else "failed", "loss": cpu_loss, "loss_rel": loss_rel,
            "grad_rel_worst_tensor": grad_rel, **{f"tolerance_{k}": v for k, v in STEP_TOLERANCE.items()}}


def check_bf16(device, smoke: bool) -> dict:  # noqa: ANN001
    import torch

    runner, batch = _recipe_step(device, smoke)
    batch = _to(batch, device)
    fp32_loss, fp32_grads = _loss_and_grads(runner, batch, bf16=False)
    bf16_loss, bf16_grads = _loss_and_grads(runner, batch, bf16=True)
    flat32 = torch.cat([fp32_grads[n].flatten() for n in fp32_grads])
    flat16 = torch.cat([bf16_grads[n].flatten() for n in fp32_grads])
    finite = bool(torch.isfinite(flat16).all()) and bf16_loss == bf16_loss
    loss_rel = abs(bf16_loss - fp32_loss) / abs(fp32_loss)
    cosine = float(torch.nn.functional.cosine_similarity(flat32, flat16, dim=0))
    passed = finite and loss_rel <= BF16_TOLERANCE["loss_rel"] and cosine >= BF16_TOLERANCE["grad_cosine"]
    return {"status": "passed" if passed else "failed", "device": str(device), "finite": finite, "loss_rel": loss_rel,
            "grad_cosine": cosine, **{f"tolerance_{k}": v for k, v in BF16_TOLERANCE.items()}}


def check_padding(device, smoke: bool) -> dict:  # noqa: ANN001
    import torch

    runner, batch = _recipe_step(device, smoke)
    model = runner.model
    length, padded = (40, 48) if smoke else (200, 256)
    video, image = batch.video[:1, :length].to(device), batch.image[:1, :length].to(device)
    with torch.no_grad():
        alone = model(video, image, torch.ones(1, length, dtype=torch.bool, device=device)).action_logits
        pad = padded - length
        mask = torch.zeros(1, padded, dtype=torch.bool, device=device)
        mask[:, :length] = True
        inside = model(torch.nn.functional.pad(video, (0, 0, 0, pad), value=7.0),
                       torch.nn.functional.pad(image, (0, 0, 0, pad), value=-7.0), mask).action_logits
    error = float((inside[:, :length] - alone).abs().max())
    return {"status": "passed" if error <= PADDING_TOLERANCE else "failed", "device": str(device),
            "length": length, "padded_to": padded, "max_abs_error": error, "tolerance": PADDING_TOLERANCE}


def check_sdpa(device, smoke: bool) -> dict:  # noqa: ANN001
    """The attention operators (aten) and CUDA kernels of one training forward (with gradients) and one
    inference forward (eval mode, no gradients): which ``scaled_dot_product_attention`` backend runs."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    runner, batch = _recipe_step(device, smoke)
    batch = _to(batch, device)
    found = {}
    for mode in ("training", "inference"):
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        runner.model.train(mode == "training")
        with torch.set_grad_enabled(mode == "training"), profile(activities=activities) as prof:
            runner.model(batch.video, batch.image, batch.mask)
        found[mode] = sorted({event.key for event in prof.key_averages()
                              if any(word in event.key.lower() for word in ATTENTION_WORDS)})
    return {"status": "measured", "device": str(device), "training": ", ".join(found["training"]),
            "inference": ", ".join(found["inference"])}


def part_correctness(args: argparse.Namespace) -> dict:
    import torch

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    checks = {
        "golden_float64": lambda: check_golden(device),
        "step_cpu_vs_cuda_float32": (lambda: check_cpu_vs_cuda(args.smoke)) if cuda else None,
        "bf16_autocast_step": lambda: check_bf16(device, args.smoke),
        "padding_invariance": lambda: check_padding(device, args.smoke),
        "sdpa_kernel": lambda: check_sdpa(device, args.smoke),
    }
    result: dict = {}
    for name, check in checks.items():
        started = time.perf_counter()
        if check is None:
            result[name] = {"status": "skipped", "reason": "needs CUDA (no GPU in this run)"}
            continue
        try:
            result[name] = check()
        except Exception as error:  # recorded; the other checks still run
            traceback.print_exc()
            result[name] = {"status": "error", "error": f"{type(error).__name__}: {error}"[:500]}
        result[name]["seconds"] = time.perf_counter() - started
        print(f"{name}: {result[name]}", flush=True)
    return result


def _speed(args: argparse.Namespace, compile_model: bool) -> dict:
    import functools

    import torch

    if compile_model and args.smoke:  # a CPU: dynamo and AOT autograd, without inductor's minutes of C++ builds
        torch.compile = functools.partial(torch.compile, backend="aot_eager")
    gpu_train = _module(ROOT / "bench" / "gpu_train.py", "gpu_train")
    partial = Path(args.result).with_suffix(".epochs.json")

    def keep(figures: dict) -> None:  # what a time limit leaves behind
        partial.write_text(json.dumps(figures))

    run = gpu_train.measure(args.preset, 2, compile_model, 0 if args.smoke else 8, args.text_encoder,
                            bank=args.bank, on_figures=keep)
    figures = speed_figures(run)
    if compile_model:
        figures["compile_backend"] = "aot_eager" if args.smoke else "inductor"
    return figures


def part_speed(args: argparse.Namespace) -> dict:
    return _speed(args, compile_model=False)


def part_speed_compile(args: argparse.Namespace) -> dict:
    return _speed(args, compile_model=True)


def part_torchrun(args: argparse.Namespace) -> dict:
    import torch

    from refdense.synth import default_dataset
    from refdense.train import load_config

    work = Path(args.work)
    config = load_config("configs/synthetic.yaml", overrides=[
        f"data.dataset={default_dataset('tiny')}", "data.text_encoder=random", "data.window=32", "model.dim=32",
        "model.heads=2", "model.head_dim=16", "model.local_hidden=64", "model.max_len=32", "optim.epochs=1",
        f"run.device={'cuda' if torch.cuda.is_available() else 'cpu'}"])
    config.save(work / "torchrun.yaml")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
               "-m", "refdense", "train", "--config", str(work / "torchrun.yaml"), "--out", str(work / "torchrun"),
               "--quiet"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
    written = (work / "torchrun" / "predictions-test.npz").is_file()
    return {"status": "passed" if done.returncode == 0 and written else "failed", "returncode": done.returncode,
            "backend": "nccl" if torch.cuda.is_available() else "gloo", "predictions_written": written,
            "seconds": time.perf_counter() - started}


def part_notebook09(args: argparse.Namespace) -> dict:
    import torch

    from refdense.course.execute import execute_notebook
    from refdense.synth import default_dataset

    dataset = default_dataset(args.preset)
    if args.bank:
        _module(ROOT / "bench" / "gpu_train.py", "gpu_train").install_bank(Path(args.bank), dataset)
    copy = Path(args.work) / NOTEBOOK
    shutil.copyfile(ROOT / "notebooks" / NOTEBOOK, copy)
    os.environ.update(REFDENSE_DATASET=str(dataset), REFDENSE_EPOCHS="1", REFDENSE_MODELS="refdense",
                      REFDENSE_TEXT_ENCODER=args.text_encoder, REFDENSE_RUNS=str(Path(args.work) / "runs"))
    if not torch.cuda.is_available():
        os.environ["REFDENSE_ALLOW_CPU"] = "1"  # the smoke run: the full profile on a CPU, on tiny
    try:
        seconds = execute_notebook(copy, timeout=args.cell_timeout, profile="full")
    finally:
        if copy.is_file():
            shutil.copyfile(copy, Path(args.out) / NOTEBOOK)  # unchanged when a cell failed
    return {"status": "passed", "seconds": seconds, "dataset": args.preset, "epochs": 1, "models": "refdense"}


def part_jobs(args: argparse.Namespace) -> dict:
    helps = [subprocess.run([sys.executable, "-m", "refdense", command, "--help"], capture_output=True, text=True,
                            check=True).stdout for command in ("train", "sweep", "ablate")]
    if any("--jobs" in text for text in helps):
        raise RuntimeError("refdense has a --jobs option now: measure it here (runs per minute)")
    return {"status": "skipped", "reason": "refdense has no --jobs option (several runs at once): nothing to measure"}


def make_bank(folder: Path, presets: list[str]) -> None:
    """Embed the prompts of ``presets`` with ``minilm`` here, into ``folder/<preset>/text_bank-minilm.pt``,
    without generating the datasets (their class names come from the generator's info)."""
    from refdense.synth import Dials, PRESETS, dataset_info
    from refdense.text import build_text_bank, load_text_encoder, text_bank_path

    encoder = load_text_encoder("minilm")
    for preset in presets:
        info = dataset_info(preset, 0, Dials().for_preset(PRESETS[preset]))
        (folder / preset).mkdir(parents=True, exist_ok=True)
        build_text_bank(encoder, info).save(text_bank_path(folder / preset, "minilm"))
        print(f"{text_bank_path(folder / preset, 'minilm')}: {len(info.classes)} classes")


PART_FUNCTIONS = {"environment": part_environment, "correctness": part_correctness, "speed": part_speed,
                  "speed_compile": part_speed_compile, "torchrun": part_torchrun, "notebook09": part_notebook09,
                  "jobs": part_jobs}


# ---------------------------------------------------------------------------------------------
# The driver


def run_part(name: str, args: argparse.Namespace, limit: float, log) -> dict:  # noqa: ANN001
    """Run one part in a child process under ``limit`` seconds; its record (status, seconds, result, note)."""
    result_file = Path(args.work) / f"{name}.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--part", name, "--result", str(result_file),
               "--out", str(args.out), "--work", str(args.work), "--preset", args.preset,
               "--text-encoder", args.text_encoder, "--cell-timeout", str(int(limit))]
    command += (["--smoke"] if args.smoke else []) + (["--bank", str(args.bank)] if args.bank else [])
    log.write(f"\n===== {name} (limit {limit:.0f} s) =====\n")
    log.flush()
    started = time.perf_counter()
    # a session of its own, so that a part over its limit is stopped with all it started (DataLoader
    # workers, torchrun's processes, the notebook's kernel)
    child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=args.env,
                             start_new_session=True)
    try:
        returncode = child.wait(timeout=limit)
        status, note = ("ok", "") if returncode == 0 else ("error", f"exit status {returncode}; see log.txt")
    except subprocess.TimeoutExpired:
        status, note = "timeout", f"stopped at its limit of {limit:.0f} s"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    record: dict = {"status": status, "seconds": time.perf_counter() - started, "note": note}
    if result_file.is_file():
        record["result"] = json.loads(result_file.read_text())
    elif result_file.with_suffix(".epochs.json").is_file():  # a speed part stopped between epochs
        record["result"] = speed_figures(json.loads(result_file.with_suffix(".epochs.json").read_text()))
    outcome = record.get("result", {})
    if status == "ok" and outcome.get("status") in ("failed", "skipped"):
        record["status"] = outcome["status"]
    if status == "ok" and any(isinstance(v, dict) and v.get("status") in ("failed", "error") for v in outcome.values()):
        record["status"] = "failed"
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="output folder when $OUT is not set")
    parser.add_argument("--work", type=Path, help="scratch folder for data and runs (default: a temporary one, removed)")
    parser.add_argument("--budget", type=float, help="seconds for the whole check (default 480; 1500 with --smoke)")
    parser.add_argument("--smoke", action="store_true", help="every part on the CPU at tiny sizes")
    parser.add_argument("--only", nargs="+", choices=PARTS, help="run only these parts")
    parser.add_argument("--bank", type=Path, help="folder made by --make-bank (minilm text banks)")
    parser.add_argument("--make-bank", type=Path, metavar="DIR", help="make the minilm banks into DIR and stop")
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # a child process: one part
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--preset", default="", help=argparse.SUPPRESS)
    parser.add_argument("--text-encoder", default="", help=argparse.SUPPRESS)
    parser.add_argument("--cell-timeout", type=int, default=600, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if str(ROOT) not in sys.path:  # refdense from this checkout, however the script was started
        sys.path.insert(0, str(ROOT))
    if args.make_bank:
        make_bank(args.make_bank, ["charades-like", "tiny"])
        return 0
    if args.part:  # the child: run the part, write its result
        from refdense.io import atomic_write

        result = PART_FUNCTIONS[args.part](args)
        with atomic_write(args.result) as handle:
            json.dump(result, handle)
        return 0

    out = Path(os.environ["OUT"]) if os.environ.get("OUT") else args.out
    if out is None:
        parser.error("no output folder: set $OUT or give --out")
    out.mkdir(parents=True, exist_ok=True)
    args.out = out
    args.budget = args.budget or (1500.0 if args.smoke else 480.0)
    args.preset = "tiny" if args.smoke else "charades-like"
    args.text_encoder = "minilm" if args.bank else "random"
    scratch = args.work is None
    args.work = Path(tempfile.mkdtemp(prefix="gpu_check-")) if scratch else args.work
    args.work.mkdir(parents=True, exist_ok=True)
    args.env = {**os.environ, "REFDENSE_DATA": str(args.work / "data"), "REFDENSE_RUNS": str(args.work / "runs"),
                "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    limits = SMOKE_SECONDS if args.smoke else PART_SECONDS
    report: dict = {"smoke": args.smoke, "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                    "budget": args.budget, "text_encoder": args.text_encoder, "parts": {}}
    began = time.perf_counter()
    try:
        with open(out / "log.txt", "w", encoding="utf-8") as log:
            for name in args.only or PARTS:
                left = args.budget - (time.perf_counter() - began)
                if left < 10:
                    report["parts"][name] = {"status": "not run", "seconds": 0.0, "note": "budget spent"}
                else:
                    report["parts"][name] = run_part(name, args, min(limits[name], left), log)
                print(f"{name}: {report['parts'][name]['status']} in {report['parts'][name]['seconds']:.0f} s",
                      flush=True)
                report["seconds"] = time.perf_counter() - began
                write_summary(out, report)  # after every part: a killed check keeps what it measured
    finally:
        if scratch:
            shutil.rmtree(args.work, ignore_errors=True)
    print((out / "summary.md").read_text())
    return 0 if all(p["status"] in ("ok", "passed", "skipped") for p in report["parts"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
