"""The training loop: `Trainer.fit` / `Trainer.evaluate` over a model, an optimizer, loaders and a
device, written out step by step so that a reader sees every phase.

A step is one optimizer update (`grad_accum` micro-batches). Checkpoints are taken on step
boundaries and record where the loader stood (epoch, batches consumed), the early-stopping
state and every RNG state, so `fit(resume=True)` continues a run bit-exactly: the same
batches, the same dropout masks, the same parameters as an uninterrupted run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..errors import RustorchToolsError
from . import observe, progress
from .loaders import TensorLoader

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class TrainerError(RustorchToolsError):
    """A trainer set-up that cannot work (bad option, autocast unavailable on the device)."""


@dataclass
class EarlyStopping:
    """Stop when `metric` (an evaluation metric such as "eval/accuracy") has not improved by
    more than `min_delta` for `patience` evaluations in a row."""

    metric: str
    mode: str = "max"
    patience: int = 2
    min_delta: float = 0.0
    best: float | None = None
    bad_epochs: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise TrainerError(f"early_stopping mode must be 'max' or 'min', got {self.mode!r}")
        if self.patience < 1:
            raise TrainerError(f"early_stopping patience must be >= 1, got {self.patience}")

    def update(self, metrics: dict[str, float]) -> bool:
        """Record one evaluation; True when training should stop."""
        if self.metric not in metrics:
            raise TrainerError(f"early_stopping metric {self.metric!r} not among {sorted(metrics)}")
        value = metrics[self.metric]
        sign = 1.0 if self.mode == "max" else -1.0
        if self.best is None or sign * (value - self.best) > self.min_delta:
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "bad_epochs": self.bad_epochs}


@dataclass
class FitResult:
    epochs: int  # epochs completed
    step: int  # optimizer steps taken in total
    metrics: dict[str, float] = field(default_factory=dict)  # the last evaluation's
    stopped_early: bool = False
    resumed_from: str | None = None  # the checkpoint file, when fit resumed


def _rank() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _flatten(out: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequence outputs (B, T, C) against (B, T) targets become (B*T, C) against (B*T)."""
    if out.dim() > 2:
        return out.reshape(-1, out.shape[-1]), target.reshape(-1)
    return out, target


class Trainer:
    """An explicit training loop. `run` (a rustorch_tools Run) receives metrics, checkpoints,
    the timeline and profiler traces; without it nothing is logged."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        train_loader: Iterable[Any],
        device: torch.device | str,
        *,
        loss_fn: LossFn = F.cross_entropy,
        eval_loader: Iterable[Any] | None = None,
        scheduler: Any = None,
        scheduler_interval: str = "epoch",
        epochs: int = 1,
        grad_accum: int = 1,
        autocast: bool = False,
        autocast_dtype: torch.dtype | None = None,
        checkpoint_every: int | None = None,
        checkpoint_each_epoch: bool = True,
        keep_checkpoints: int | None = 3,
        early_stopping: EarlyStopping | None = None,
        run: Any = None,
        max_steps_per_epoch: int | None = None,
        show_progress: bool | None = None,
        compile_backend: str | None = None,
        log_every: int = 1,
        timeline: bool = True,
        on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    ) -> None:
        if epochs < 1 or grad_accum < 1 or log_every < 1:
            raise TrainerError("epochs, grad_accum and log_every must be >= 1")
        if checkpoint_every is not None and checkpoint_every < 1:
            raise TrainerError(f"checkpoint_every must be >= 1 or None, got {checkpoint_every}")
        if max_steps_per_epoch is not None and max_steps_per_epoch < 1:
            raise TrainerError(f"max_steps_per_epoch must be >= 1 or None, got {max_steps_per_epoch}")
        if scheduler_interval not in ("epoch", "step"):
            raise TrainerError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.optimizer, self.scheduler, self.scheduler_interval = optimizer, scheduler, scheduler_interval
        self.train_loader, self.eval_loader, self.loss_fn = train_loader, eval_loader, loss_fn
        self.epochs, self.grad_accum = epochs, grad_accum
        self.autocast_dtype = self._check_autocast(autocast, autocast_dtype)
        self.autocast = autocast
        self.checkpoint_every, self.checkpoint_each_epoch = checkpoint_every, checkpoint_each_epoch
        self.keep_checkpoints = keep_checkpoints
        self.early_stopping, self.max_steps_per_epoch = early_stopping, max_steps_per_epoch
        self.rank, self.world = _rank()
        self.run = run
        self.logs = run is not None and self.rank == 0  # rank 0 logs, as examples/ddp_mnist.py
        self.show_progress = progress.wants_progress(show_progress) and self.rank == 0
        self.log_every = log_every
        self.on_epoch_end = on_epoch_end  # called (epoch, metrics) after each epoch, on every rank
        self.timeline = observe.Timeline(enabled=timeline and self.logs)
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self._forward: Callable[..., torch.Tensor] = self.model
        self._opt_step: Callable[[], Any] = self.optimizer.step
        if compile_backend is not None:
            self._forward = torch.compile(self.model, backend=compile_backend, dynamic=False)
            # Compiled, the optimizer's foreach updates fuse into one loop. Dynamo guards on the
            # float lr it reads from param_groups, so every new lr recompiles: fine once per
            # epoch, but a per-step schedule would hit the recompile limit; then the step
            # stays eager (its foreach ops are native on rustorch).
            if scheduler is None or scheduler_interval == "epoch":
                self._opt_step = torch.compile(self.optimizer.step, backend=compile_backend)

    # -- set-up -----------------------------------------------------------------------------
    def _check_autocast(self, enabled: bool, dtype: torch.dtype | None) -> torch.dtype | None:
        if not enabled:
            return None
        kind = self.device.type
        if not torch.amp.is_autocast_available(kind):
            raise TrainerError(f"autocast is not available on device type {kind!r} in this torch "
                               f"build; run without autocast or on a device that supports it")
        return dtype if dtype is not None else torch.get_autocast_dtype(kind)

    def _autocast(self) -> Any:
        if not self.autocast:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def _batches(self, epoch: int, start: int) -> Iterator[Any]:
        loader = self.train_loader
        if isinstance(loader, TensorLoader):
            return loader.batches(epoch, start)
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        elif hasattr(getattr(loader, "sampler", None), "set_epoch"):
            loader.sampler.set_epoch(epoch)
        it = iter(loader)
        for _ in range(start):  # a generic loader is replayed up to the resume point
            next(it)
        return it

    def _steps_in_epoch(self) -> int:
        n = math.ceil(len(self.train_loader) / self.grad_accum)  # type: ignore[arg-type]
        return n if self.max_steps_per_epoch is None else min(n, self.max_steps_per_epoch)

    def _lr(self) -> float:
        lr = self.optimizer.param_groups[0]["lr"]
        return float(lr.item() if isinstance(lr, torch.Tensor) else lr)

    def _log(self, metrics: dict[str, float], step: int) -> None:
        if self.logs:
            self.run.log_metrics(metrics, step=step)

    # -- checkpoints --------------------------------------------------------------------------
    def _position(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "batch": self.batch_in_epoch, "step": self.step,
                "early_stopping": self.early_stopping.state() if self.early_stopping else None}

    def save_checkpoint(self) -> None:
        """Checkpoint into the run (rank 0 writes it, holding every rank's RNG state)."""
        from ..checkpoint import capture_rng_state

        rng = capture_rng_state()
        ranks_rng = [rng]
        if self.world > 1:
            ranks_rng = [None] * self.world if self.rank == 0 else None
            dist.gather_object(rng, ranks_rng, dst=0)
        if not self.logs:
            return
        with self.timeline.span("checkpoint", "checkpoint", step=self.step) as extra:
            saved = self.run.save_checkpoint(
                model=self.model, optimizer=self.optimizer, scheduler=self.scheduler,
                step=self.step, epoch=self.epoch, keep_last=self.keep_checkpoints,
                extra={"trainer": self._position(), "rank_rng": ranks_rng})
            extra["bytes"] = saved.size

    def resume(self) -> str | None:
        """Load the run's latest checkpoint into model/optimizer/scheduler and the loop position;
        returns the checkpoint file, or None when the run has none."""
        from ..checkpoint import load_checkpoint, restore_rng_state
        from ..errors import CheckpointNotFoundError

        if self.run is None:
            raise TrainerError("resume needs the run to resume from (Trainer(run=...))")
        try:
            ckpt = load_checkpoint(self.run, model=self.model, optimizer=self.optimizer,
                                   scheduler=self.scheduler, map_location=self.device)
        except CheckpointNotFoundError:
            return None
        extra = ckpt.extra or {}
        pos = extra.get("trainer")
        if not isinstance(pos, dict):
            raise TrainerError(f"checkpoint {ckpt.path.name} was not written by the trainer (no loop position)")
        self.epoch, self.batch_in_epoch, self.step = pos["epoch"], pos["batch"], pos["step"]
        if self.early_stopping is not None and pos.get("early_stopping"):
            self.early_stopping.best = pos["early_stopping"]["best"]
            self.early_stopping.bad_epochs = pos["early_stopping"]["bad_epochs"]
        ranks_rng = extra.get("rank_rng") or []
        if self.world > 1 and len(ranks_rng) == self.world:
            restore_rng_state(ranks_rng[self.rank])
        if self.logs:
            self.run.log_event("resumed", {"checkpoint": ckpt.path.name, "step": self.step,
                                           "epoch": self.epoch})
            if hasattr(self.run, "rewind"):  # steps after the checkpoint are logged again
                self.run.rewind(self.step, checkpoint=ckpt.path.name)
        return str(ckpt.path)

    # -- the loop -------------------------------------------------------------------------------
    def _train_step(self, batches: Iterator[Any], n_micro: int,
                    step_scheduler: bool = True) -> tuple[float, int, observe.StepClock]:
        """One optimizer step over up to `n_micro` micro-batches; (loss, samples, phase times)."""
        clock = observe.StepClock(self.device)
        self.model.train()
        total, samples, done = torch.zeros((), device=self.device), 0, 0
        for _ in range(n_micro):
            with clock.phase("data"):
                try:
                    x, y = next(batches)
                except StopIteration:
                    break
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            with clock.phase("forward"), self._autocast():
                out, target = _flatten(self._forward(x), y)
                loss = self.loss_fn(out, target) / self.grad_accum
            with clock.phase("backward"):
                loss.backward()
            total += loss.detach()
            samples += len(y)
            done += 1
            self.batch_in_epoch += 1
        if done == 0:
            return float("nan"), 0, clock
        with clock.phase("optimizer"):
            if done < self.grad_accum:  # the epoch's short last accumulation
                for p in self.model.parameters():
                    if p.grad is not None:
                        p.grad.mul_(self.grad_accum / done)
            self._opt_step()
            self.optimizer.zero_grad(set_to_none=True)
            if step_scheduler and self.scheduler is not None and self.scheduler_interval == "step":
                self.scheduler.step()
        return float(total.item()) * self.grad_accum / done, samples, clock

    def _train_epoch(self) -> float:
        steps = self._steps_in_epoch()
        first = self.batch_in_epoch // self.grad_accum
        batches = self._batches(self.epoch, self.batch_in_epoch)
        losses: list[float] = []
        bar = progress.bar(range(first, steps), steps - first, f"epoch {self.epoch + 1}", self.show_progress)
        for _ in bar:
            lr = self._lr()
            t0, start = time.perf_counter(), time.time()
            loss, samples, clock = self._train_step(batches, self.grad_accum)
            if samples == 0:
                break
            step_s = time.perf_counter() - t0
            losses.append(loss)
            if self.logs and self.step % self.log_every == 0:
                metrics = {"train/loss": loss, "train/lr": lr, "train/samples_per_s": samples / step_s,
                           "time/step_s": step_s}
                metrics.update({f"time/{k}_s": v for k, v in clock.seconds.items()})
                self._log(metrics, self.step)
                self.timeline.add("step", "step", start, step_s, step=self.step, epoch=self.epoch,
                                  loss=loss)
                for phase in observe.PHASES:
                    if phase in clock.starts:
                        self.timeline.add(phase, "phase", clock.starts[phase], clock.seconds[phase],
                                          step=self.step)
            self.step += 1
            bar.set_postfix(loss=f"{loss:.4f}", samples_s=f"{samples / step_s:.0f}")
            if self.checkpoint_every is not None and self.step % self.checkpoint_every == 0:
                self.save_checkpoint()
        bar.close()
        return sum(losses) / len(losses) if losses else float("nan")

    def fit(self, resume: bool = False) -> FitResult:
        """Train `epochs` epochs (from the run's latest checkpoint with `resume=True`), evaluate
        after each one when there is an eval loader, checkpoint, stop early when told to."""
        resumed_from = self.resume() if resume else None
        result = FitResult(epochs=self.epoch, step=self.step, resumed_from=resumed_from)
        try:
            while self.epoch < self.epochs:
                fallback_before = observe.fallback_counts()
                with self.timeline.span("epoch", "epoch", epoch=self.epoch + 1) as span:
                    t0 = time.perf_counter()
                    epoch_loss = self._train_epoch()
                    epoch_s = time.perf_counter() - t0
                    if self.scheduler is not None and self.scheduler_interval == "epoch":
                        self.scheduler.step()
                    metrics: dict[str, float] = {"epoch": self.epoch + 1, "train/epoch_loss": epoch_loss,
                                                 "time/epoch_s": epoch_s}
                    if self.eval_loader is not None:
                        metrics.update(self.evaluate())
                    span["loss"] = epoch_loss
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                ops = observe.fallback_delta(fallback_before, observe.fallback_counts())
                metrics.update({f"fallback/{op}": n for op, n in ops.items()})
                metrics["fallback/total"] = sum(ops.values())
                metrics.update(observe.allocator_stats(self.device))
                self._log(metrics, self.step)
                result.metrics = {k: v for k, v in metrics.items() if k.startswith("eval/")}
                if self.on_epoch_end is not None:
                    self.on_epoch_end(self.epoch, metrics)
                stop = self.early_stopping is not None and self.early_stopping.update(metrics)
                if self.checkpoint_each_epoch or stop or self.epoch == self.epochs:
                    self.save_checkpoint()
                if stop:
                    result.stopped_early = True
                    best = self.early_stopping.best
                    self._log({"early_stopping/stopped_epoch": self.epoch,
                               "early_stopping/best": best if best is not None else float("nan")}, self.step)
                    break
        finally:
            self.timeline.store(self.run if self.logs else None)
        result.epochs, result.step = self.epoch, self.step
        return result

    @torch.no_grad()
    def evaluate(self, loader: Iterable[Any] | None = None) -> dict[str, float]:
        """Mean loss and accuracy over `loader` (default: the eval loader), as eval/loss and
        eval/accuracy; with DDP the sums are all-reduced so every rank returns the same."""
        loader = loader if loader is not None else self.eval_loader
        if loader is None:
            raise TrainerError("evaluate needs a loader (Trainer(eval_loader=...) or evaluate(loader))")
        self.model.eval()
        t0, start = time.perf_counter(), time.time()
        sums = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, count
        batches = loader.batches(0) if isinstance(loader, TensorLoader) else iter(loader)
        for x, y in batches:
            x, y = x.to(self.device), y.to(self.device)
            with self._autocast():
                out, target = _flatten(self._forward(x), y)
                loss = self.loss_fn(out.float(), target, reduction="sum")
            sums += torch.tensor([loss.item(), out.argmax(dim=-1).eq(target).sum().item(), target.numel()],
                                 dtype=torch.float64)
        if self.world > 1:
            dist.all_reduce(sums)
        eval_s = time.perf_counter() - t0
        self.timeline.add("evaluate", "eval", start, eval_s, step=self.step)
        n = max(sums[2].item(), 1.0)
        return {"eval/loss": sums[0].item() / n, "eval/accuracy": sums[1].item() / n, "time/eval_s": eval_s}

    # -- profiling --------------------------------------------------------------------------------
    def profile(self, steps: int = 5, warmup: int = 1, name: str = "profile") -> str | None:
        """Record `torch.profiler` over `steps` training steps (after `warmup` steps) and store
        the Chrome trace as the run artifact `<name>.trace.json`; returns its artifact path.

        Profiling leaves no trace in training: model, optimizer, scheduler, RNG states and the
        loop position are restored afterwards, so `fit` continues as if it had not run."""
        import copy
        import tempfile
        from pathlib import Path

        from torch.profiler import ProfilerActivity, profile, schedule

        from ..checkpoint import capture_rng_state, restore_rng_state

        if steps < 1 or warmup < 0:
            raise TrainerError("profile needs steps >= 1 and warmup >= 0")
        saved = (self.epoch, self.batch_in_epoch, capture_rng_state(),
                 copy.deepcopy(self.model.state_dict()), copy.deepcopy(self.optimizer.state_dict()),
                 copy.deepcopy(self.scheduler.state_dict()) if self.scheduler is not None else None)
        batches = self._batches(self.epoch, self.batch_in_epoch)
        sched = schedule(wait=0, warmup=warmup, active=steps, repeat=1)
        try:
            with tempfile.TemporaryDirectory(prefix="rustorch-profile-") as tmp:
                path = Path(tmp) / f"{name}.trace.json"
                with profile(activities=[ProfilerActivity.CPU], schedule=sched) as prof:
                    for i in range(warmup + steps):
                        start, t0 = time.time(), time.perf_counter()
                        _, samples, _ = self._train_step(batches, self.grad_accum, step_scheduler=False)
                        if samples == 0:
                            break
                        if i >= warmup:
                            self.timeline.add("profiled step", "profile", start, time.perf_counter() - t0,
                                              artifact=f"{name}.trace.json")
                        prof.step()
                prof.export_chrome_trace(str(path))
                if not self.logs:
                    return None
                return self.run.log_artifact(path, overwrite=True)
        finally:
            self.epoch, self.batch_in_epoch, rng, model_state, opt_state, sched_state = saved
            self.model.load_state_dict(model_state)
            self.optimizer.load_state_dict(opt_state)
            if sched_state is not None:
                self.scheduler.load_state_dict(sched_state)
            restore_rng_state(rng)
            self.timeline.store(self.run if self.logs else None)
