"""Several CTs per forward pass: sliding windows of different CTs batched together.

Small CTs (one window covers the whole CT at the model spacing, or a few) leave a forward pass
mostly empty when they are segmented one at a time: a batch of ``sw_batch_size`` windows holds
one window. Here several CTs are segmented at once, each by the unchanged one-CT pipeline
(:func:`~metevo.segmentation._core.predict_labels`, MONAI's sliding window in a worker thread),
but their networks calls go through one :class:`WindowBatcher`, which concatenates the windows
that the CTs in flight are waiting on and runs the network once for all of them. Reading and
decoding the next CTs, resampling, argmax and post-processing of the others run in those worker
threads meanwhile (torch releases the GIL), so decoding and writing overlap with inference.

The masks are those of one CT at a time: the network sees the same windows (in eval mode a
window's output does not depend on the other windows of its batch) and everything else is the
one-CT code. Needs only numpy, torch and MONAI, like ``_core``.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch

from metevo.segmentation._core import uses_bf16

__all__ = ["WindowBatcher", "predict_many"]


class WindowBatcher:
    """Runs ``network`` on windows gathered from several client threads in one forward pass.

    A client calls the batcher like the network (``batcher(windows)``, a ``(B, C, X, Y, Z)``
    tensor) and blocks until its slice of the batched output is ready. A forward pass starts as
    soon as the waiting windows number ``batch_size`` or more, every active client is waiting,
    or the oldest request has waited ``max_wait_s`` (a client busy reading or post-processing its
    CT does not hold the others up for long). ``precision`` is applied here, in the thread that runs
    the network (autocast and inference mode are per thread).
    """

    def __init__(
        self,
        network: Callable,
        *,
        batch_size: int,
        device: torch.device,
        bf16: bool,
        max_wait_s: float = 0.05,
    ):
        self.network = network
        self.max_wait_s = float(max_wait_s)
        self.batch_size = max(1, int(batch_size))
        self.device = device
        self.bf16 = bf16
        self._cond = threading.Condition()
        self._queue: list[tuple[torch.Tensor, cf.Future]] = []
        self._since = 0.0  # when the oldest waiting request arrived
        self._clients = 0
        self._closed = False
        #: forward passes run and windows per pass (for the benchmark and the tests)
        self.passes: list[int] = []

    def __call__(self, windows: torch.Tensor) -> torch.Tensor:
        future: cf.Future = cf.Future()
        with self._cond:
            if not self._queue:
                self._since = time.perf_counter()
            self._queue.append((windows, future))
            self._cond.notify_all()
        return future.result()

    def join(self) -> None:
        """A client thread starts (call :meth:`leave` when it stops calling the network)."""
        with self._cond:
            self._clients += 1

    def leave(self) -> None:
        with self._cond:
            self._clients -= 1
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _ready(self) -> bool:
        if not self._queue:
            return False
        waiting = sum(w.shape[0] for w, _ in self._queue)
        return (
            waiting >= self.batch_size
            or len(self._queue) >= self._clients
            or time.perf_counter() - self._since >= self.max_wait_s
        )

    def serve(self) -> None:
        """Run forward passes until :meth:`close` (call in the thread that owns the network)."""
        while True:
            with self._cond:
                while not self._ready() and not (self._closed and not self._queue):
                    self._cond.wait(timeout=self.max_wait_s if self._queue else None)
                if not self._queue:
                    return
                taken, count = [], 0
                while self._queue and count < self.batch_size:
                    taken.append(self._queue.pop(0))
                    count += taken[-1][0].shape[0]
                self._since = time.perf_counter()
            self._run(taken)

    def _run(self, taken: list[tuple[torch.Tensor, cf.Future]]) -> None:
        try:
            batch = (
                torch.cat([w.to(self.device) for w, _ in taken])
                if len(taken) > 1
                else (taken[0][0].to(self.device))
            )
            with torch.inference_mode():
                if self.bf16:
                    with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16):
                        out = self.network(batch).float()
                else:
                    out = self.network(batch)
            self.passes.append(int(batch.shape[0]))
            start = 0
            for windows, future in taken:
                n = windows.shape[0]
                future.set_result(out[start : start + n])
                start += n
        except BaseException as exc:  # every waiting client gets the error, none hangs
            for _, future in taken:
                if not future.done():
                    future.set_exception(exc)


def _interrupt(result: Any) -> bool:
    """A ``KeyboardInterrupt`` / ``SystemExit`` caught in a worker (not a failed CT)."""
    return isinstance(result, BaseException) and not isinstance(result, Exception)


def predict_many(
    network: Callable,
    jobs: Iterable[tuple[Any, Callable[[], tuple[Any, Any, dict[str, Any]]]]],
    card: Any,
    *,
    predict: Callable,
    device: torch.device,
    batch_size: int = 4,
    in_flight: int = 4,
    precision: str = "auto",
    max_wait_s: float = 0.05,
    passes: list[int] | None = None,
    **options: Any,
) -> Iterator[tuple[Any, Any, float]]:
    """Segment several CTs at once; yields ``(key, result or exception, seconds)`` as they finish.

    ``jobs`` yields ``(key, load)``: ``load()`` (run in a worker thread) returns ``(volume,
    affine, extra)``; ``extra["check"]``, when present, is called on ``(volume, affine)`` before
    the prediction (input-profile warnings). ``result`` is ``(labels, extra)`` with ``labels``
    the uint8 label map of ``predict(network, volume, affine, card, ...)``, normally
    :func:`~metevo.segmentation._core.predict_labels`. At most ``in_flight`` CTs are held at a
    time; their windows share forward passes of up to ``batch_size`` windows (see
    :class:`WindowBatcher` for ``max_wait_s``). ``passes``, when given, receives the number of
    windows of each forward pass.
    """
    batcher = WindowBatcher(
        network, batch_size=batch_size, device=device, bf16=uses_bf16(precision, device),
        max_wait_s=max_wait_s,
    )  # fmt: skip
    if passes is not None:
        batcher.passes = passes
    results: list[tuple[Any, Any, float]] = []
    done = threading.Condition()
    jobs_iter = iter(jobs)
    jobs_lock = threading.Lock()
    stop = threading.Event()  # the consumer went away: take no new CT

    def worker() -> None:
        try:
            while not stop.is_set():
                with jobs_lock:
                    job = next(jobs_iter, None)
                if job is None:
                    return
                key, load = job
                tick = time.perf_counter()
                try:
                    volume, affine, extra = load()
                    if extra.get("check") is not None:
                        extra["check"](volume, affine)
                    labels = predict(
                        batcher, volume, affine, card, device=device, sw_batch_size=batch_size,
                        precision="fp32", **options,
                    )  # fmt: skip
                    result: Any = (labels, extra)
                except Exception as exc:  # the CT fails, the others go on
                    result = exc
                except BaseException as exc:  # KeyboardInterrupt...: re-raised by the consumer
                    stop.set()
                    result = exc
                with done:
                    results.append((key, result, time.perf_counter() - tick))
                    done.notify_all()
        finally:
            batcher.leave()

    n_threads = max(1, int(in_flight))
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(n_threads)]
    for t in threads:
        batcher.join()
        t.start()
    server = threading.Thread(target=batcher.serve, daemon=True)
    server.start()
    try:
        while True:
            with done:
                while not results and any(t.is_alive() for t in threads):
                    done.wait(timeout=0.5)
                ready, results[:] = list(results), []
            fatal = [r for _, r, _ in ready if _interrupt(r)]
            yield from (item for item in ready if not _interrupt(item[1]))
            if fatal:  # what finished is handed over first, then the interrupt goes on
                raise fatal[0]
            if not ready and not any(t.is_alive() for t in threads):
                return
    finally:
        stop.set()
        for t in threads:
            t.join()
        batcher.close()
        server.join()
