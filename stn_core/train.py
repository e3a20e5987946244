"""Train a classifier on distorted MNIST, end to end (spatial transformer included).

    python -m stn_core.train --model st-cnn --transform affine --regime RTS --epochs 20 --out runs/rts-st-cnn-affine
    python -m stn_core.train --task sequence --model rnn-spn --epochs 20     # several digits (stn_core.multi)
    torchrun --nproc_per_node 2 -m stn_core.train ...    # data-parallel, gloo on CPU / nccl on GPU

With ``--task`` (``addition`` or ``sequence``) the run trains a several-digit model of
:mod:`stn_core.multi` instead (``--model`` one of ``MULTI_MODELS[task]``): each batch is
drawn by :func:`stn_core.multi.draw_task` from the training digits, the loss is the cross
entropy summed over the output heads, and the test errors are the task's metrics on its
fixed test set (:func:`stn_core.multi.fixed_task_test_set`).

Every epoch draws fresh distortions of the 60,000 training digits; the test error is
measured on the regime's fixed test set (:func:`stn_core.distortions.fixed_test_set`).
After each epoch the run writes, in ``--out``:

* ``log.jsonl``         one JSON line per epoch (loss, train and test error, images seen, time);
* ``checkpoint.pt``     model + optimiser + schedule state, for ``--resume``;
* ``NAME.safetensors``  the weights, with the model card ``NAME.json`` beside them;
* ``timelapse.npz``     with ``--timelapse-every N`` (spatial-transformer models): theta and
  the warped outputs of 16 fixed test digits every N steps, from the identity at step 0
  (read it with :func:`stn_core.timelapse.load`).

Randomness is a function of ``--seed`` and the epoch alone, so a resumed run continues
exactly as the uninterrupted run would have. Under ``torchrun`` every process draws the
same global batch and distortions and trains on its own slice of them; ``--batch-size``
is the global batch.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from . import timelapse
from .cards import SLUG, ModelCard, TrainingRecord, model_slug
from .checkpoints import CheckpointError, load, save_model
from .distortions import REGIMES, as_float_images, distort, draw_distortion
from .evaluate import error_rate, regime_test_set
from .geometry import TRANSFORM_NAMES
from .mnist import TRAIN_DIGITS, load_mnist
from .models import MODEL_NAMES, ModelConfig, build_model
from .multi import HEADS, MULTI_MODELS, TASKS, MultiConfig, build_multi_model, draw_task, fixed_task_test_set, task_errors
from .sketch import cached_training_sketches

# The training recipe: what a run learns depends on these options; the others only say
# where it writes, on which device and how it is split across processes.
RECIPE = (
    "task",
    "model",
    "transform",
    "regime",
    "output_size",
    "hidden",
    "batch_norm",
    "epochs",
    "batch_size",
    "optimizer",
    "lr",
    "loc_lr",
    "weight_decay",
    "seed",
    "train_subset",
    "init",
    "init_scale",
    "transformers",
    "classifier",
    "head",
    "sketch_share",
    "max_scale",
)
# Options that define the run: a resumed run must agree on all of them (the recipe, and
# what its recorded test error is measured on).
RUN_DEFINING = (*RECIPE, "test_subset")
# Parameters trained at --loc-lr: the localisation nets (single-digit models' spatial
# transformer; a parallel model's localisers; a recurrent model's encoders, GRU and regressor).
LOCALISATION = (
    "spatial_transformer.",
    "localisers.",
    "regressors.",
    "encoder.",
    "encode.",
    "glimpse_encoder.",
    "glimpse_encode.",
    "gru.",
    "regressor.",
)
TIMELAPSE_DIGITS = 16  # fixed test digits a time-lapse records
# --max-scale's weight: the loss adds MAX_SCALE_WEIGHT * mean(relu(scale - max_scale)^2).
# A window 0.1 too wide adds 0.1 to the loss, about a trained model's whole cross entropy
# on a batch, so the bound holds; within it the term is zero, and the classifier's loss
# alone places the window.
MAX_SCALE_WEIGHT = 10.0


def recipe(args: argparse.Namespace) -> dict:
    """``{option: value}`` of the :data:`RECIPE` options of parsed arguments."""
    return {option: getattr(args, option) for option in RECIPE}


def model_config(args: argparse.Namespace) -> ModelConfig | MultiConfig:
    """The :class:`ModelConfig` of parsed arguments (the canvas is the regime's), or with
    ``--task`` the :class:`~stn_core.multi.MultiConfig`."""
    if args.task:
        options = {"transformers": args.transformers, "classifier": args.classifier, "head": args.head}
        return MultiConfig(args.task, args.model, **{k: v for k, v in options.items() if v is not None})
    return ModelConfig(
        model=args.model,
        canvas_size=REGIMES[args.regime].canvas_size,
        transform=args.transform,
        output_size=args.output_size,
        hidden=args.hidden,
        batch_norm=args.batch_norm,
    )


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m stn_core.train", description=__doc__.split("\n\n")[0])
    multi_models = sorted({name for names in MULTI_MODELS.values() for name in names} - set(MODEL_NAMES))
    parser.add_argument("--task", choices=list(TASKS), help="train a several-digit model (stn_core.multi) instead")
    parser.add_argument("--model", choices=[*MODEL_NAMES, *multi_models], default="st-cnn")
    parser.add_argument("--transformers", type=int, default=2, help="--task addition --model parallel-st: side by side")
    parser.add_argument("--classifier", choices=("fcn", "cnn"), default="fcn", help="--model parallel-st: its classifier")
    parser.add_argument(
        "--head", choices=HEADS, help="--task addition: 'classes' (the paper's 19 sums) or 'digit-sum' (two digits, summed)"
    )
    parser.add_argument("--transform", choices=TRANSFORM_NAMES, default="affine", help="for st-cnn / st-fcn")
    parser.add_argument("--regime", choices=list(REGIMES), default="RTS")
    parser.add_argument("--output-size", type=int, help="side of the spatial transformer's output (default: canvas)")
    parser.add_argument("--hidden", type=int, default=0, help="hidden units in the CNN classifier (0: none)")
    parser.add_argument("--batch-norm", action="store_true", help="batch normalisation after each CNN conv layer")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256, help="global batch, split across processes")
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (cosine decay to 0)")
    parser.add_argument("--loc-lr", type=float, help="learning rate of the localisation net (default: --lr)")
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--init",
        help="start from the weights of this model (a .safetensors file with its card; same architecture) "
        "instead of a random initialisation",
    )
    parser.add_argument(
        "--init-scale",
        type=float,
        help="attention or affine spatial transformers: start zoomed in, theta's scale this instead of 1 "
        "(a smaller output than the canvas then starts at full resolution on the canvas's centre)",
    )
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda")
    parser.add_argument("--data-dir", help="MNIST folder (default: $STN_DATA_DIR, else data/mnist)")
    parser.add_argument("--out", type=Path, help="run folder (default: runs/NAME)")
    parser.add_argument("--name", help="model name (default: REGIME-MODEL[-TRANSFORM], lower case)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt if it exists")
    parser.add_argument("--stop-after", type=int, help="stop after this many epochs of this invocation (resume later)")
    parser.add_argument(
        "--timelapse-every", type=int, default=0, help="record theta and warped test digits every N steps (0: off)"
    )
    parser.add_argument(
        "--sketch-share",
        type=float,
        help="single-digit models: train on this share (0-1] of digits redrawn as sketchpad strokes "
        "(stn_core.sketch; writing-style augmentation)",
    )
    parser.add_argument(
        "--max-scale",
        type=float,
        help="single-digit affine or attention spatial transformers: penalise windows wider than this share "
        "of the canvas (a squared hinge on the window's scale, weight MAX_SCALE_WEIGHT), so that it zooms in",
    )
    parser.add_argument("--train-subset", type=int, help="train on the first N training digits only")
    parser.add_argument("--test-subset", type=int, help="measure on the first N fixed test digits only")
    args = parser.parse_args(argv)
    if args.task:  # these options belong to single-digit models
        args.regime = args.transform = args.output_size = None
        if args.model != "parallel-st":
            args.transformers = args.classifier = None
    else:
        args.transformers = args.classifier = None
    if not args.task:
        args.head = None
    if args.model in ("cnn", "fcn"):
        args.transform = None
        args.output_size = None
    if args.loc_lr is None:
        args.loc_lr = args.lr
    try:
        config = model_config(args)
    except ValueError as error:
        parser.error(f"--model {args.model}: {error}")
    if args.init_scale is not None:
        if args.task or args.transform not in ("affine", "attention"):
            parser.error("--init-scale needs a single-digit affine or attention spatial transformer (--transform)")
        if not 0.05 <= args.init_scale <= 1.0:
            parser.error(f"--init-scale must be from 0.05 to 1, got {args.init_scale}")
    if args.max_scale is not None:
        if args.task or args.transform not in ("affine", "attention"):
            parser.error("--max-scale needs a single-digit affine or attention spatial transformer (--transform)")
        if not 0.05 <= args.max_scale < 1.0:
            parser.error(f"--max-scale must be from 0.05 to below 1, got {args.max_scale}")
    if args.sketch_share is not None:
        if args.task:
            parser.error("--sketch-share is for single-digit models, not --task")
        if not 0 < args.sketch_share <= 1:
            parser.error(f"--sketch-share must be above 0 and at most 1, got {args.sketch_share}")
    args.name = args.name or model_slug(args.regime, config)
    if not SLUG.match(args.name):
        parser.error(f"--name must be a slug (lower-case letters, digits and single dashes), got {args.name!r}")
    args.out = args.out or Path("runs") / args.name
    for option in ("epochs", "batch_size", "train_subset", "test_subset", "stop_after"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1, got {value}")
    return args


def _distributed() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)``; joins the process group under torchrun."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1, 0
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and os.environ.get("STN_DDP_BACKEND") != "gloo"
    dist.init_process_group("nccl" if use_cuda else "gloo")
    if not use_cuda:  # processes on one machine share its cores
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world_size))))
    return dist.get_rank(), world_size, local_rank


def _device(choice: str, world_size: int, local_rank: int) -> torch.device:
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA device is available (use --device cpu)")
        return torch.device("cuda", local_rank if world_size > 1 else torch.cuda.current_device())
    return torch.device(choice)


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def _fingerprint(model) -> torch.Tensor:
    """Sum and sum of squares of all weights (float64): equal weights give equal prints."""
    flat = torch.cat([p.detach().double().flatten() for p in model.parameters()])
    return torch.stack([flat.sum(), flat.pow(2).sum()])


def _to_bytes(images: torch.Tensor) -> np.ndarray:
    """``(N, S, S)`` floats in [0, 1] -> uint8 pixels."""
    return (images.clamp(0, 1) * 255).round().byte().cpu().numpy()


class TimelapseRecorder:
    """Theta and warped outputs of fixed test digits as training goes (a
    :class:`stn_core.timelapse.Timelapse`), for the app's "watch it learn" view. Recording
    runs the model in eval mode and draws no random numbers, so it does not change training."""

    def __init__(self, path: Path, canvases: torch.Tensor, labels: torch.Tensor, every: int, batch_size: int, resume: bool):
        self.path, self.canvases, self.labels, self.every, self.batch_size = path, canvases, labels, every, batch_size
        self.steps, self.thetas, self.warped = [], [], []
        if resume and path.exists():
            saved = timelapse.load(path)
            self.steps = saved.steps.tolist()
            self.thetas = list(saved.theta)
            self.warped = list(saved.warped)

    @torch.no_grad()
    def record(self, model, step: int) -> None:
        if step % self.every or (self.steps and step <= self.steps[-1]):
            return
        was_training = model.training
        details = model.eval().forward_details(self.canvases)
        model.train(was_training)
        self.steps.append(step)
        self.thetas.append(details.theta.cpu().numpy())
        # one channel of what the classifier saw: (D, out, out), or (D, K, h, w) per glimpse
        warped = details.glimpses[:, :, 0] if hasattr(details, "glimpses") else details.warped[:, 0]
        self.warped.append(_to_bytes(warped))

    def save(self) -> None:
        lapse = timelapse.Timelapse(
            steps=np.array(self.steps),
            theta=np.stack(self.thetas),
            warped=np.stack(self.warped),
            canvases=_to_bytes(self.canvases[:, 0]),
            labels=self.labels.numpy(),
            batch_size=self.batch_size,
        )
        timelapse.save(self.path, lapse)


def _has_transformer(args: argparse.Namespace) -> bool:
    """Whether the run's model has a spatial transformer (a localisation net and a theta)."""
    return model_config(args).glimpses > 0 if args.task else args.transform is not None


def _command_line() -> str:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    prefix = f"torchrun --nproc_per_node {world_size} -m stn_core.train" if world_size > 1 else "python -m stn_core.train"
    return " ".join([prefix, shlex.join(sys.argv[1:])]).strip()


def train(args: argparse.Namespace) -> ModelCard | None:
    """Run (or resume) training as described by ``args``; returns the final model card
    (``None`` in processes other than rank 0, and when no epoch was left to run)."""
    # Weight decay leaves dead units' weights subnormal (below 1.2e-38), and every multiply
    # by one takes the CPU's slow path: a fine-tuning step of the full-range ST-CNN took
    # 3.0 s instead of 1.6 (batch 256, one thread, 2026-12-02). Treated as zero, they train
    # the same. Set first, so that the intra-op threads torch starts later inherit it, and
    # put back after, for the rest of a process that trains in-process (tests, notebooks).
    torch.set_flush_denormal(True)
    try:
        return _train(args)
    finally:
        torch.set_flush_denormal(False)


def _train(args: argparse.Namespace) -> ModelCard | None:
    rank, world_size, local_rank = _distributed()
    device = _device(args.device, world_size, local_rank)
    out: Path = args.out
    checkpoint_file = out / "checkpoint.pt"

    images, labels = load_mnist("train", args.data_dir)
    if args.train_subset:
        images, labels = images[: args.train_subset], labels[: args.train_subset]
    train_images = as_float_images(images).to(device)  # also the clutter pool for TC
    train_labels = labels.to(device)
    # Writing-style augmentation: each digit's sketched form, built once and cached; each
    # step draws which digits of its batch are shown that way.
    sketches = None
    if args.sketch_share:
        sketches = torch.from_numpy(cached_training_sketches(images.numpy(), log=tqdm.write)).unsqueeze(1).to(device)
    if args.task:
        test_digits, test_digit_labels = load_mnist("test", args.data_dir)
        test_images, test_labels = fixed_task_test_set(
            args.task, as_float_images(test_digits), test_digit_labels, count=args.test_subset
        )
    else:
        test_images, test_labels = regime_test_set(args.regime, args.data_dir)
    if args.test_subset:
        test_images, test_labels = test_images[: args.test_subset], test_labels[: args.test_subset]

    steps_per_epoch = train_images.shape[0] // args.batch_size
    if steps_per_epoch == 0:
        raise SystemExit(f"--batch-size {args.batch_size} is larger than the {train_images.shape[0]} training digits")
    if args.batch_size % world_size:
        raise SystemExit(f"--batch-size {args.batch_size} must divide evenly across {world_size} processes")
    local_batch = args.batch_size // world_size
    if args.max_scale is not None and world_size > 1:
        # The penalty needs theta, which the data-parallel wrapper's forward does not return.
        raise SystemExit("--max-scale trains in one process only (not under torchrun)")

    torch.manual_seed(args.seed)  # identical initial weights in every process
    config = model_config(args)
    model = (build_multi_model(config) if args.task else build_model(config)).to(device)
    init_record = _initialise_from(model, args.init) if args.init else None
    if args.init_scale is not None:
        _start_zoomed_in(model, args.init_scale)
    localisation = [p for n, p in model.named_parameters() if n.startswith(LOCALISATION)]
    others = [p for n, p in model.named_parameters() if not n.startswith(LOCALISATION)]
    groups = [{"params": others, "lr": args.lr}] + ([{"params": localisation, "lr": args.loc_lr}] if localisation else [])
    if args.optimizer == "adam":
        optimizer = torch.optim.Adam(groups, weight_decay=args.weight_decay)
    else:
        optimizer = torch.optim.SGD(groups, momentum=0.9, nesterov=True, weight_decay=args.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * steps_per_epoch)

    start_epoch, images_seen, wall_time = 0, 0, 0.0
    if args.resume and checkpoint_file.exists():
        state = torch.load(checkpoint_file, map_location=device, weights_only=True)
        changed = {k: (state["args"].get(k), getattr(args, k)) for k in RUN_DEFINING if state["args"].get(k) != getattr(args, k)}
        if changed:
            details = ", ".join(f"--{k.replace('_', '-')} was {old} now {new}" for k, (old, new) in changed.items())
            raise SystemExit(f"cannot resume {checkpoint_file}: the run was defined differently ({details})")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        start_epoch, images_seen, wall_time = state["epoch"], state["images_seen"], state["wall_time"]
    elif rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "log.jsonl").write_text("")

    trained = torch.nn.parallel.DistributedDataParallel(model) if world_size > 1 else model
    recorder = None
    if args.timelapse_every and _has_transformer(args) and rank == 0:
        recorder = TimelapseRecorder(
            out / "timelapse.npz",
            test_images[:TIMELAPSE_DIGITS].to(device),
            test_labels[:TIMELAPSE_DIGITS],
            args.timelapse_every,
            args.batch_size,
            args.resume,
        )
        recorder.record(model, start_epoch * steps_per_epoch)
    card, details = None, {}
    last_epoch = args.epochs if args.stop_after is None else min(args.epochs, start_epoch + args.stop_after)
    for epoch in range(start_epoch + 1, last_epoch + 1):
        started = time.perf_counter()
        trained.train()
        generator = _epoch_generator(args.seed, epoch)
        order = torch.randperm(train_images.shape[0], generator=generator)
        loss_sum = torch.zeros((), device=device)
        wrong = torch.zeros((), device=device, dtype=torch.long)
        progress = tqdm(
            range(steps_per_epoch), desc=f"epoch {epoch}/{args.epochs}", disable=rank != 0, mininterval=2, leave=False
        )
        for step in progress:
            batch = order[step * args.batch_size : (step + 1) * args.batch_size]
            mine = slice(rank * local_batch, (rank + 1) * local_batch)
            if args.task:  # the task draws its own digits for each input
                inputs, targets = draw_task(args.task, train_images, train_labels, len(batch), generator)
                inputs, targets = inputs[mine], targets[mine]
            else:
                distortion = draw_distortion(args.regime, len(batch), generator, pool_size=train_images.shape[0])
                index = batch[mine].to(device)
                digits = train_images[index]
                if sketches is not None:
                    sketched = (torch.rand(len(batch), generator=generator) < args.sketch_share)[mine].to(device)
                    digits = torch.where(sketched.view(-1, 1, 1, 1), sketches[index], digits)
                inputs = distort(digits, distortion[mine], pool=train_images)
                targets = train_labels[index]
            if args.max_scale is None:
                logits = trained(inputs)
                penalty = 0.0
            else:  # single process (checked above), so the model's own forward_details is safe
                details = model.forward_details(inputs)
                logits = details.logits
                penalty = window_penalty(model.spatial_transformer.transform.window_scale(details.theta), args.max_scale)
            # Several heads (a sequence's digits): one cross entropy over every head's answer.
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)) + penalty
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += loss.detach()
            wrong += (logits.argmax(-1) != targets).sum()
            if recorder:
                recorder.record(model, (epoch - 1) * steps_per_epoch + step + 1)
        images_seen += steps_per_epoch * args.batch_size
        wall_time += time.perf_counter() - started

        if rank == 0:
            trained.eval()
            if args.task:
                test_errors = {metric: round(error, 4) for metric, error in task_errors(model, test_images, test_labels).items()}
            else:
                test_errors = {args.regime: round(error_rate(model, test_images, test_labels), 4)}
            answers_per_input = TASKS[args.task].heads if args.task else 1
            record = {
                "epoch": epoch,
                "train_loss": round(float(loss_sum) / steps_per_epoch, 5),
                "train_error": round(100.0 * float(wrong) / (steps_per_epoch * local_batch * answers_per_input), 4),
                "test_error": next(iter(test_errors.values())),
                **({"test_errors": test_errors} if args.task else {}),
                "lr": schedule.get_last_lr()[0],
                "images_seen": images_seen,
                "wall_time_s": round(wall_time, 1),
            }
            with open(out / "log.jsonl", "a") as log:
                log.write(json.dumps(record) + "\n")
            tqdm.write(json.dumps(record))
            details = _card_details(args, epoch, images_seen, wall_time, test_errors, device, world_size, test_images.shape[0])
            if args.init:
                details["training"] = dataclasses.replace(details["training"], init=init_record)
            card = save_model(model, out / f"{args.name}.safetensors", **details)
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "epoch": epoch,
                "images_seen": images_seen,
                "wall_time": wall_time,
                "args": {k: getattr(args, k) for k in RUN_DEFINING},
            }
            torch.save(state, out / "checkpoint.pt.partial")
            os.replace(out / "checkpoint.pt.partial", checkpoint_file)
            if recorder:
                recorder.save()
        if world_size > 1:
            dist.barrier()

    if world_size > 1:
        prints = [torch.zeros(2, dtype=torch.float64, device=device) for _ in range(world_size)]
        dist.all_gather(prints, _fingerprint(model).to(device))
        if rank == 0 and card:
            details["training"] = dataclasses.replace(details["training"], rank_fingerprints=[p.tolist() for p in prints])
            card = save_model(model, out / f"{args.name}.safetensors", **details)
        dist.destroy_process_group()
        if any(not torch.equal(prints[0], p) for p in prints):
            raise SystemExit(f"processes ended with different weights: {[p.tolist() for p in prints]}")
    return card


def window_penalty(scale: Tensor, max_scale: float) -> Tensor:
    """``MAX_SCALE_WEIGHT * mean(relu(scale - max_scale)^2)`` of ``(N,)`` window scales:
    zero while every window is within the bound, growing with the square of the excess.

    >>> window_penalty(torch.tensor([0.5, 0.7]), 0.6)
    tensor(0.0500)
    """
    return MAX_SCALE_WEIGHT * F.relu(scale - max_scale).square().mean()


def _start_zoomed_in(model: torch.nn.Module, scale: float) -> None:
    """Set the spatial transformer's starting theta (its regressor's bias; the weights
    start at zero) to the identity scaled by ``scale``: a window of ``scale`` times the
    canvas, on its centre."""
    with torch.no_grad():
        bias = model.spatial_transformer.regressor.bias
        if model.config.transform == "attention":
            bias[0] = scale
        else:
            bias[0] = bias[4] = scale


def _initialise_from(model: torch.nn.Module, path: str) -> str:
    """Copy the weights of the model at ``path`` into ``model`` (fine-tuning from it).

    Returns:
        What the card records: the source's slug and the SHA-256 of its weights.

    Raises:
        SystemExit: when the source cannot be loaded or its architecture differs.
    """
    try:
        source = load(path)
    except CheckpointError as error:
        raise SystemExit(f"--init: {error}") from None
    if source.config != model.config:
        raise SystemExit(f"--init: {path} has architecture {source.config}, expected {model.config}")
    model.load_state_dict(source.state_dict())
    return f"{source.card.name} sha256:{source.card.weights_sha256}"


def _card_details(args, epoch, images_seen, wall_time, test_errors, device, world_size, test_digits) -> dict:
    """The model card's fields that training knows (:func:`save_model` adds the rest)."""
    threads = torch.get_num_threads()
    has_localisation = _has_transformer(args)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({threads} thread{'s' * (threads != 1)})"
    training = TrainingRecord(
        epochs=epoch,
        epochs_planned=args.epochs,
        images_seen=images_seen,
        wall_time_s=round(wall_time, 1),
        device=device_name,
        processes=world_size,
        optimizer=args.optimizer,
        lr=args.lr,
        loc_lr=args.loc_lr if has_localisation else None,
        batch_size=args.batch_size,
        weight_decay=args.weight_decay,
        seed=args.seed,
        train_digits=args.train_subset or TRAIN_DIGITS,
        command=_command_line(),
        sketch_share=args.sketch_share,
        max_scale=args.max_scale,
    )
    return {
        "name": args.name,
        **({"task": args.task} if args.task else {"regime": args.regime}),
        "test_error": test_errors,
        "test_digits": test_digits,
        "training": training,
        "torch_version": torch.__version__,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def main(argv=None) -> int:
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
