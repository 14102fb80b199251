"""``refdense synth``: write a synthetic dense-action dataset (the generator: refdense.synth)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="generate a synthetic dense-action dataset",
        description="Generate a synthetic dense-action dataset in the refdense format (dataset.json, "
        "annotations.json, features.h5). Actions compose an entity and a motion; the image stream "
        "carries entities, the video stream motions whose identity shows only over several segments. "
        "Same preset and seed give the same bytes. Without --out, the dataset goes to the data folder "
        "($REFDENSE_DATA, a clone's data/, else the user cache), where training finds the preset by name "
        "(data.dataset: tiny); it is generated once and reused.",
    )
    parser.add_argument(
        "--preset",
        default="default",
        help="tiny | default | charades-like | charades-quarter | multithumos-like (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        help="output folder (must be missing or empty unless --overwrite; "
        "default: DATA/synthetic/<preset>[-seed<k>][<dials>], kept if already there)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --out")
    dials = parser.add_argument_group(
        "mechanism dials", 'off by default; see data/README.md, "Mechanism dials"'
    )
    dials.add_argument(
        "--coupling",
        type=float,
        default=0.0,
        help="0-1: how much a motion's video appearance depends on the entity it acts on",
    )
    dials.add_argument(
        "--rare-share",
        type=float,
        default=0.0,
        help="0-1 (excluded): share of composite classes whose training instances are capped",
    )
    dials.add_argument(
        "--rare-cap", type=int, default=5, help="training instances kept per rare class (default: 5)"
    )
    dials.add_argument(
        "--text-alignment",
        type=float,
        default=0.0,
        help="0-1: how much the entity and motion prototypes follow the prompts' text embeddings",
    )
    dials.add_argument("--train-videos", type=int, help="number of training videos (default: the preset's)")
    dials.add_argument(
        "--held-out",
        type=float,
        default=0.0,
        help="0-1 (excluded): share of composite classes kept (nearly) out of training and validation",
    )
    dials.add_argument(
        "--held-out-k",
        type=int,
        default=0,
        help="training instances kept per held-out class (default: 0, never seen together)",
    )
    dials.add_argument(
        "--entity-gate",
        type=int,
        default=0,
        help="0 | 1: a motion's phase order depends on an entity group the video stream cannot see",
    )
    dials.add_argument(
        "--entangle",
        type=float,
        default=0.0,
        help="0-1: streams mixing entity, motion and a dominant scene, in a low-rank subspace; noisy labels",
    )
    dials.add_argument(
        "--text-prior",
        type=float,
        default=0.0,
        help="0-1: entity prototypes from attribute-structured prompt embeddings",
    )
    dials.add_argument(
        "--rare-entities",
        type=int,
        default=0,
        help="this many entities keep at most 3 training (+ validation) instances over all their classes",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    from refdense import synth
    from refdense.cli import CommandError

    if args.preset not in synth.PRESETS:
        raise CommandError(f"--preset: expected one of {sorted(synth.PRESETS)}, found {args.preset!r}")
    started = time.perf_counter()
    dials = synth.Dials(
        coupling=args.coupling,
        rare_share=args.rare_share,
        rare_cap=args.rare_cap,
        text_alignment=args.text_alignment,
        train_videos=args.train_videos,
        held_out=args.held_out,
        held_out_k=args.held_out_k,
        entity_gate=args.entity_gate,
        entangle=args.entangle,
        text_prior=args.text_prior,
        rare_entities=args.rare_entities,
    )
    if args.out is None:
        if args.overwrite:
            raise CommandError(
                "--overwrite needs --out (the dataset in the data folder is kept up to date by itself)"
            )
        out = synth.default_dataset(args.preset, seed=args.seed, dials=dials)
    else:
        embeddings = synth.text_embeddings(args.preset, args.seed, dials)
        out = synth.generate(
            args.preset,
            args.out,
            seed=args.seed,
            overwrite=args.overwrite,
            dials=dials,
            embeddings=embeddings,
        )
    print(
        f"dataset {out} (preset {args.preset}, seed {args.seed}{dials.arguments()}) ready in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return 0
