"""Where a study's runs train: in this process, in a pool of local processes, or on a Ray cluster.

An executor trains `RunSpec`s and hands each result back to the driver (`study.run_study`); it
never writes a record. The driver is the only writer of run records, whichever executor trained
them, so:
- a record is the same bytes whether a run trained here, in a local worker or on another machine
  (same seeds, same hardware -> same metrics), and a cluster needs no shared filesystem;
- a worker that dies (killed, out of memory, its driver gone) writes nothing: its run is retried
  (Ray) or reported as failed, never recorded as finished, and the next invocation trains it.

The seam between "train a spec somewhere" and "write its record here" is `Trained`: everything
a record needs, computed where the run trained (its provenance included).

Executors report progress through `Callbacks` (a run started, finished an epoch, failed); the
CLI draws bars and log lines from them, the same for every executor and any number of workers.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from queue import Empty
from typing import TYPE_CHECKING, Callable

import torch

from ..core.config import Metrics, Provenance
from ..core.data import MNIST, SYNTHETIC, synthetic_mnist
from ..core.writers import read_other_writers
from .provenance import now, provenance
from .training import RunResult, train_run

if TYPE_CHECKING:
    from .records import RunSpec


def _nothing(*args) -> None:
    return None


@dataclass
class Callbacks:
    """What a study reports as it goes; every callback runs in the driver's main thread."""

    on_plan: Callable[[list["RunSpec"], int, int], None] = (
        _nothing  # runs to train, finished ones skipped,
    )
    # partial folders removed
    on_start: Callable[["RunSpec"], None] = _nothing  # a run began training
    on_epoch: Callable[["RunSpec", dict], None] = (
        _nothing  # one epoch's record (metrics.jsonl line)
    )
    on_finish: Callable[["RunSpec", Metrics], None] = _nothing  # its record is written; its metrics
    on_fail: Callable[["RunSpec", str], None] = _nothing  # it failed: nothing recorded; why


@dataclass
class Trained:
    """A finished run as it comes back from wherever it trained: everything its record needs."""

    spec: "RunSpec"
    result: RunResult  # the selected model (on the CPU), the per-epoch history, its metrics
    provenance: Provenance  # computed where it trained


def train_spec(
    spec: "RunSpec", mnist: MNIST, commit: str, on_epoch: Callable[[dict], None] | None = None
) -> Trained:
    """Train one run; the same function in every executor. `commit`: the code's, as the driver read
    it."""
    started = now()
    result = train_run(spec.config, mnist, on_epoch=on_epoch)
    if not spec.config.test and mnist.source != SYNTHETIC:
        # Validation runs also read other writers' digits: the choices of a screen look at both.
        result = replace(
            result, metrics=replace(result.metrics, **read_other_writers(result.model))
        )
    return Trained(spec, result, provenance(commit, started, result.device, mnist.source))


def why_failed(error: BaseException) -> str:
    """A failed run's reason in one line: the exception, its message and where it was raised."""
    where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    at = f" ({Path(where.filename).name}:{where.lineno})" if where else ""
    return f"{type(error).__name__}: {' '.join(str(error).split())}{at}"


def study_data(data_dir, dry_run: bool) -> MNIST:
    """What a study's runs train on: MNIST from data_dir, or a dry run's synthetic digits."""
    return synthetic_mnist() if dry_run else MNIST(data_dir)


@dataclass
class Local:
    """One run after the other in this process: the default for one worker."""

    data_dir: object = None
    dry_run: bool = False
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)

    def describe(self) -> dict:
        return {"executor": "local", "workers": 1, "threads_per_worker": self.threads}

    def execute(
        self,
        specs: list["RunSpec"],
        commit: str,
        on_trained: Callable[[Trained], None],
        cb: Callbacks,
    ) -> None:
        torch.set_num_threads(self.threads)
        mnist = study_data(self.data_dir, self.dry_run)
        for spec in specs:
            cb.on_start(spec)
            try:
                trained = train_spec(
                    spec, mnist, commit, on_epoch=lambda r, s=spec: cb.on_epoch(s, r)
                )
            except (
                Exception
            ) as e:  # reported like a failed worker's run; KeyboardInterrupt stops the study
                cb.on_fail(spec, why_failed(e))
                continue
            on_trained(trained)


# --- a pool of local processes ------------------------------------------------------------------


def die_with_parent(parent_pid: int) -> None:
    """End this process when `parent_pid` ends, even by SIGKILL: a worker outliving its driver
    would keep training for nobody. Linux: the kernel sends SIGKILL (PR_SET_PDEATHSIG);
    elsewhere a thread polls the parent's pid. (Linux signals when the parent *thread* ends: start
    workers from the driver's main thread, as run_study does.)"""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    else:

        def watch():
            while os.getppid() == parent_pid:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the watch began
        os._exit(1)


def _pool_worker(
    index: int, parent_pid: int, inbox, outbox, data_dir, dry_run: bool, threads: int, commit: str
) -> None:
    die_with_parent(parent_pid)
    signal.signal(
        signal.SIGINT, signal.SIG_IGN
    )  # Ctrl-C is the driver's to handle: it stops the pool
    torch.set_num_threads(threads)
    mnist = study_data(data_dir, dry_run)
    outbox.put(("ready", index, None))
    while (spec := inbox.get()) is not None:
        try:
            trained = train_spec(
                spec, mnist, commit, on_epoch=lambda r: outbox.put(("epoch", index, r))
            )
            # Pickled here into plain bytes: queued tensors would otherwise travel as shared
            # memory that lives only as long as this process.
            outbox.put(("trained", index, pickle.dumps(trained)))
        except Exception as e:
            outbox.put(("failed", index, why_failed(e)))


@dataclass
class ProcessPool:
    """`workers` local processes, one run each at a time; they die with the driver."""

    workers: int
    data_dir: object = None
    dry_run: bool = False

    @property
    def threads(self) -> int:
        return max(1, (os.cpu_count() or 1) // self.workers)

    def describe(self) -> dict:
        return {
            "executor": "processes",
            "workers": self.workers,
            "threads_per_worker": self.threads,
        }

    def execute(
        self,
        specs: list["RunSpec"],
        commit: str,
        on_trained: Callable[[Trained], None],
        cb: Callbacks,
    ) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # fresh interpreters: no forked torch thread pools
        outbox = ctx.Queue()
        todo = list(reversed(specs))  # popped from the end: grid order
        procs, inboxes, running = (
            {},
            {},
            {},
        )  # worker index -> process, its inbox, the run it trains

        def start(index: int) -> None:
            inboxes[index] = ctx.SimpleQueue()
            procs[index] = ctx.Process(
                target=_pool_worker,
                daemon=True,
                args=(
                    index,
                    os.getpid(),
                    inboxes[index],
                    outbox,
                    self.data_dir,
                    self.dry_run,
                    self.threads,
                    commit,
                ),
            )
            procs[index].start()

        def feed(index: int) -> None:
            running.pop(index, None)
            if todo:
                running[index] = todo.pop()
                inboxes[index].put(running[index])
                cb.on_start(running[index])
            else:
                inboxes[index].put(None)

        for index in range(min(self.workers, len(specs))):
            start(index)
        next_index = len(procs)
        try:
            while todo or running:
                try:
                    kind, index, payload = outbox.get(timeout=0.5)
                except Empty:
                    for index, proc in list(procs.items()):
                        if proc.is_alive():
                            continue
                        del procs[index]
                        if (
                            index in running
                        ):  # died while training: nothing written, the run is reported
                            cb.on_fail(
                                running.pop(index),
                                f"worker process exited with code {proc.exitcode}",
                            )
                            if todo:
                                start(next_index)
                                next_index += 1
                    if not procs and todo:  # e.g. every worker failed to load the data
                        raise RuntimeError(
                            f"every worker process exited; {len(todo)} runs not started"
                        )
                    continue
                if kind == "epoch":
                    cb.on_epoch(running[index], payload)
                    continue
                if kind == "trained":
                    on_trained(pickle.loads(payload))
                elif kind == "failed":
                    cb.on_fail(running[index], payload)
                feed(index)  # after "ready", or a run's end: the next run, or None to stop
        finally:  # normally they have all exited; after Ctrl-C or an error they are stopped here
            for proc in procs.values():
                proc.kill()
                proc.join()


# --- a Ray cluster -------------------------------------------------------------------------------


def _ray_train(spec: "RunSpec", mnist: MNIST, commit: str, progress, threads: int) -> Trained:
    """One Ray task: train a run, send its start and epochs to the driver, return the result."""
    torch.set_num_threads(threads)
    progress.put(("start", spec.name, None))
    return train_spec(spec, mnist, commit, on_epoch=lambda r: progress.put(("epoch", spec.name, r)))


@dataclass
class RayCluster:
    """Each run one Ray task with `cpus_per_run` CPUs and `gpus_per_run` (fractional) GPUs.

    `address`: None starts a local Ray instance for this study; "auto" or HOST:PORT joins a
    running cluster. The driver loads MNIST once and puts it in Ray's object store, so worker
    machines need neither the data nor a shared filesystem, only digitpair installed. A task
    whose worker process dies is retried `max_retries` times, then reported as failed."""

    address: str | None = None
    cpus_per_run: float = 1
    gpus_per_run: float = 0
    data_dir: object = None
    dry_run: bool = False
    max_retries: int = 3
    cluster: dict = field(default_factory=dict)  # the cluster's resources, read when it is joined

    def describe(self) -> dict:
        if not self.cluster:  # not joined yet: how many runs train at once is the cluster's to say
            return {
                "executor": "ray",
                "threads_per_worker": self.threads,
                "address": self.address or "local",
                "cpus_per_run": self.cpus_per_run,
                "gpus_per_run": self.gpus_per_run,
            }
        runs_at_once = (
            int(self.cluster.get("CPU", 0) // self.cpus_per_run) if self.cpus_per_run else 0
        )
        if self.gpus_per_run:
            runs_at_once = min(runs_at_once, int(self.cluster.get("GPU", 0) // self.gpus_per_run))
        return {
            "executor": "ray",
            "workers": runs_at_once,
            "threads_per_worker": self.threads,
            "address": self.address or "local",
            "cpus_per_run": self.cpus_per_run,
            "gpus_per_run": self.gpus_per_run,
            "cluster": self.cluster,
        }

    @property
    def threads(self) -> int:
        return max(1, int(self.cpus_per_run))

    def execute(
        self,
        specs: list["RunSpec"],
        commit: str,
        on_trained: Callable[[Trained], None],
        cb: Callbacks,
    ) -> None:
        import ray
        from ray.util.queue import Queue

        ours = not ray.is_initialized()
        if ours:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
        pending = {}
        try:
            self.cluster = {
                k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU", "memory")
            }
            self.cluster["nodes"] = sum(1 for n in ray.nodes() if n["Alive"])
            mnist = ray.put(study_data(self.data_dir, self.dry_run))
            progress = Queue(actor_options={"num_cpus": 0})
            task = ray.remote(_ray_train).options(
                num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run, max_retries=self.max_retries
            )
            pending = {
                task.remote(spec, mnist, commit, progress, self.threads): spec for spec in specs
            }
            by_name = {spec.name: spec for spec in specs}
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0.2)
                for kind, name, record in progress.get_nowait_batch(progress.qsize()):
                    if kind == "start":
                        cb.on_start(by_name[name])
                    else:
                        cb.on_epoch(by_name[name], record)
                for ref in ready:
                    spec = pending.pop(ref)
                    try:
                        trained = ray.get(ref)
                    except (
                        ray.exceptions.RayError
                    ) as e:  # the task raised, or its worker died max_retries times
                        cb.on_fail(spec, why_failed(getattr(e, "cause", None) or e))
                        continue
                    on_trained(trained)
        finally:  # Ctrl-C or an error: stop the runs in flight; none of them writes anything
            for ref in pending:
                ray.cancel(ref, force=True)
            if ours:
                ray.shutdown()


def check_flags(
    kind: str,
    workers: int = 1,
    address: str | None = None,
    cpus_per_run: float = 1,
    gpus_per_run: float = 0,
) -> None:
    """Refuse, before anything is loaded, a flag of one executor given to the other, and Ray
    missing."""
    if kind == "ray":
        if workers != 1:
            raise ValueError(
                "--workers is for --executor local; on Ray, as many runs train at once as "
                "the cluster's CPUs (--cpus-per-run) and GPUs (--gpus-per-run) allow"
            )
        if importlib.util.find_spec("ray") is None:
            raise ValueError("--executor ray needs Ray: pip install 'digitpair[ray]'")
    elif address is not None or cpus_per_run != 1 or gpus_per_run:
        raise ValueError("--address, --cpus-per-run and --gpus-per-run are for --executor ray")


def _local(workers: int, data_dir, dry_run: bool, **ray_flags):
    if workers == 1 and dry_run:
        # A dry run's tensors are tiny: a second thread only waits on the first, and beside another
        # busy process the waiting made a dry run ~10x slower (benchmarks/README.md).
        return Local(data_dir=data_dir, dry_run=True, threads=1)
    if workers == 1:
        return Local(data_dir=data_dir)
    return ProcessPool(workers, data_dir=data_dir, dry_run=dry_run)


def _ray(
    workers: int,
    data_dir,
    dry_run: bool,
    address: str | None,
    cpus_per_run: float,
    gpus_per_run: float,
):
    return RayCluster(
        address=address,
        cpus_per_run=cpus_per_run,
        gpus_per_run=gpus_per_run,
        data_dir=data_dir,
        dry_run=dry_run,
    )


# What the CLI's `--executor` names: "local" (processes; in this process for one worker) or "ray".
EXECUTORS = {"local": _local, "ray": _ray}


def make_executor(
    kind: str,
    workers: int = 1,
    data_dir=None,
    dry_run: bool = False,
    address: str | None = None,
    cpus_per_run: float = 1,
    gpus_per_run: float = 0,
):
    """The executor `EXECUTORS[kind]` builds."""
    if kind not in EXECUTORS:
        raise ValueError(f"--executor {kind!r}: choose {' or '.join(EXECUTORS)}")
    return EXECUTORS[kind](
        workers=workers,
        data_dir=data_dir,
        dry_run=dry_run,
        address=address,
        cpus_per_run=cpus_per_run,
        gpus_per_run=gpus_per_run,
    )


def describe_flags(kind: str, workers: int, cpus_per_run: float, gpus_per_run: float) -> str:
    """How the runs train, for the study's first log line."""
    return (
        f"on Ray ({cpus_per_run:g} CPU, {gpus_per_run:g} GPU per run)"
        if kind == "ray"
        else f"with {workers} worker(s)"
    )
