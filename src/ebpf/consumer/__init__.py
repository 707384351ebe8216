"""Event consumers for ring buffers and perf buffers: a callback on its own thread with
stats, backpressure and sampling variants, ``peek``, and an event-handler pipeline.

::

    from ebpf.consumer import Consumer, pipeline

    handle = pipeline(parse=Event.decode, filter=lambda e: e.pid != 0, handler=print)
    with Consumer(events_map, handle) as c:      # a RINGBUF or PERF_EVENT_ARRAY map,
        ...                                      # or an open RingBuffer / PerfBuffer
    c.stats.records, c.stats.bytes, c.stats.dropped, c.stats.lag

Built on the public readers :class:`ebpf.ringbuf.RingBuffer` and
:class:`ebpf.perf.PerfBuffer`; a handler gets each record as ``bytes`` (perf records: the
sample, the CPU is in ``Consumer.last_cpu``). Exceptions in handlers are counted in
``stats.errors`` and the last one kept in ``stats.last_error``: the consumer goes on.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from .. import errors
from .._types import MapType

__all__ = ["BackpressureConsumer", "Consumer", "SamplingConsumer", "Stats", "pipeline"]

Handler = Callable[[bytes], Any]


@dataclass
class Stats:
    """Counters of one consumer (updated by its threads; read them at any time)."""

    records: int = 0  #: records read from the kernel
    bytes: int = 0  #: their payload bytes
    handled: int = 0  #: records given to the handler
    dropped: int = 0  #: records the consumer dropped (backpressure, sampling)
    lost: int = 0  #: records the kernel dropped (perf ``PERF_RECORD_LOST``)
    errors: int = 0  #: handler exceptions
    wakeups: int = 0  #: reads that returned records
    lag: int = 0  #: bytes still waiting in the kernel buffer after the last read
    started: float = 0.0  #: ``time.monotonic()`` at start
    last_record: float = 0.0  #: ``time.monotonic()`` of the last record
    last_error: BaseException | None = field(default=None, repr=False)

    @property
    def uptime(self) -> float:
        return time.monotonic() - self.started if self.started else 0.0

    @property
    def rate(self) -> float:
        """Records per second since start."""
        up = self.uptime
        return self.records / up if up > 0 else 0.0


def pipeline(*, handler: Callable[[Any], Any], parse: Callable[[bytes], Any] | None = None,
             filter: Callable[[Any], bool] | None = None,
             transform: Callable[[Any], Any] | None = None) -> Handler:
    """``handler(transform(e))`` for each ``e = parse(record)`` that passes ``filter``
    (clj-ebpf ``make-event-handler``)."""
    def run(record: bytes) -> Any:
        e: Any = parse(record) if parse is not None else record
        if filter is not None and not filter(e):
            return None
        if transform is not None:
            e = transform(e)
        return handler(e)
    return run


class _Source:
    """A RingBuffer or PerfBuffer behind one interface; owns the reader if it made it."""

    def __init__(self, source: Any, pages: int) -> None:
        from ..perf import PerfBuffer
        from ..ringbuf import RingBuffer

        self.owned = False
        if isinstance(source, (RingBuffer, PerfBuffer)):
            self.reader: Any = source
        else:
            mtype = getattr(source, "type", None)
            if mtype == MapType.PERF_EVENT_ARRAY:
                self.reader = PerfBuffer(source, pages=pages)
            elif mtype == MapType.RINGBUF:
                self.reader = RingBuffer(source)
            else:
                raise errors.BPFError(f"consumer: {source!r} is no ring buffer, perf event "
                                      "array, RingBuffer or PerfBuffer")
            self.owned = True
        self.perf = isinstance(self.reader, PerfBuffer)
        self.last_cpu = -1

    def read(self, timeout: float) -> Iterator[bytes]:
        if self.perf:
            for cpu, rec in self.reader.read(timeout):
                self.last_cpu = cpu
                yield bytes(rec)
        else:
            yield from self.reader.read(timeout, copy=True)

    def lost(self) -> int:
        return int(self.reader.lost) if self.perf else 0

    def available(self) -> int:
        return int(self.reader.available())

    def close(self) -> None:
        if self.owned:
            self.reader.close()


class Consumer:
    """Calls ``handler(record)`` for every record, on a thread of its own.

    ``source``: a ``RINGBUF``/``PERF_EVENT_ARRAY`` map (a reader is opened and closed with
    the consumer; ``pages`` per CPU for perf) or an open reader (left open). ``poll``
    seconds bound how long :meth:`stop` waits for the thread.
    """

    def __init__(self, source: Any, handler: Handler, *, poll: float = 0.05,
                 pages: int = 8, name: str = "ebpf-consumer") -> None:
        self._src = _Source(source, pages)
        self.handler = handler
        self.poll = poll
        self.stats = Stats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._name = name
        self._peeked: deque[bytes] = deque()
        self._lock = threading.Lock()

    @property
    def last_cpu(self) -> int:
        """CPU of the last perf record read (-1 for ring buffers)."""
        return self._src.last_cpu

    # --- reading ----------------------------------------------------------------------------
    def _take(self, timeout: float) -> list[bytes]:
        with self._lock:
            out = list(self._peeked)
            self._peeked.clear()
            if not out:
                out = list(self._src.read(timeout))
                self._count(out)
            s = self.stats
            if out:
                s.wakeups += 1
                s.last_record = time.monotonic()
            s.lost = self._src.lost()
            s.lag = self._src.available()
        return out

    def _count(self, recs: list[bytes]) -> None:
        self.stats.records += len(recs)
        self.stats.bytes += sum(len(r) for r in recs)

    def _deliver(self, rec: bytes) -> None:
        try:
            self.handler(rec)
            self.stats.handled += 1
        except Exception as e:
            self.stats.errors += 1
            self.stats.last_error = e

    def _on_records(self, recs: list[bytes]) -> None:
        for r in recs:
            self._deliver(r)

    def peek(self, limit: int | None = None, timeout: float = 0.0) -> list[bytes]:
        """The records waiting (up to ``limit``), without handing them to the handler: they
        are delivered later, in order. Records are taken from the kernel buffer into the
        consumer (the readers have no non-consuming read)."""
        with self._lock:
            if not self._peeked:
                recs = list(self._src.read(timeout))
                self._count(recs)
                self._peeked.extend(recs)
            items = list(self._peeked)
        return items if limit is None else items[:limit]

    def process(self, timeout: float = 0.0) -> int:
        """Read and handle what is waiting, in this thread (without :meth:`start`)."""
        recs = self._take(timeout)
        self._on_records(recs)
        return len(recs)

    # --- thread -------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.process(self.poll)
            except errors.BPFError as e:  # reader closed under us
                self.stats.last_error = e
                self.stats.errors += 1
                return

    def start(self) -> Consumer:
        if self._thread is not None:
            raise errors.BPFError("consumer: already started")
        self.stats.started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        return self

    def stop(self, drain: bool = True) -> None:
        """Stop the thread; with ``drain`` handle what is still waiting first. Closes the
        reader the consumer opened. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            if drain:
                while self.process(0.0):
                    pass
        finally:
            self._src.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Consumer:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop(drain=et is None)


class SamplingConsumer(Consumer):
    """Hands one record in ``every`` to the handler (the first, then every ``every``-th);
    the others count as ``dropped``."""

    def __init__(self, source: Any, handler: Handler, *, every: int, **kw: Any) -> None:
        if every < 1:
            raise errors.BPFError(f"SamplingConsumer: every={every} must be >= 1")
        super().__init__(source, handler, **kw)
        self.every = every
        self._n = 0

    def _on_records(self, recs: list[bytes]) -> None:
        for r in recs:
            if self._n % self.every == 0:
                self._deliver(r)
            else:
                self.stats.dropped += 1
            self._n += 1


class BackpressureConsumer(Consumer):
    """A reader thread queues records for a handler thread; when ``max_pending`` records
    are queued, new ones are dropped (``stats.dropped``, ``on_drop(record)``) so a slow
    handler never stalls the kernel buffer."""

    def __init__(self, source: Any, handler: Handler, *, max_pending: int = 1024,
                 on_drop: Callable[[bytes], Any] | None = None, **kw: Any) -> None:
        if max_pending < 1:
            raise errors.BPFError(f"BackpressureConsumer: max_pending={max_pending} < 1")
        super().__init__(source, handler, **kw)
        self.max_pending = max_pending
        self.on_drop = on_drop
        self._q: queue.Queue[bytes | None] = queue.Queue(max_pending)
        self._worker: threading.Thread | None = None

    @property
    def pending(self) -> int:
        return self._q.qsize()

    @property
    def healthy(self) -> bool:
        """False once records have been dropped or the queue is over 90 % full."""
        return self.stats.dropped == 0 and self._q.qsize() < 0.9 * self.max_pending

    def _on_records(self, recs: list[bytes]) -> None:
        for r in recs:
            try:
                self._q.put_nowait(r)
            except queue.Full:
                self.stats.dropped += 1
                if self.on_drop is not None:
                    try:
                        self.on_drop(r)
                    except Exception as e:
                        self.stats.errors += 1
                        self.stats.last_error = e

    def _work(self) -> None:
        while True:
            r = self._q.get()
            if r is None:
                return
            self._deliver(r)

    def start(self) -> Consumer:
        self._worker = threading.Thread(target=self._work, name=self._name + "-handler",
                                        daemon=True)
        self._worker.start()
        return super().start()

    def stop(self, drain: bool = True) -> None:
        try:
            super().stop(drain)
        finally:
            if self._worker is not None:
                self._q.put(None)
                self._worker.join()
                self._worker = None
