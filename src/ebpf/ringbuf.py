"""Ring buffers: read what BPF programs submit, and feed ``BPF_MAP_TYPE_USER_RINGBUF``.

Kernel: ``BPF_MAP_TYPE_RINGBUF`` (Linux >= 5.8), ``BPF_MAP_TYPE_USER_RINGBUF`` (>= 6.1).

Layout (``kernel/bpf/ringbuf.c``). Page 0 of the map's fd holds ``consumer_pos`` (u64), page 1
``producer_pos`` (u64), then the data area, which the kernel maps *twice* back to back so that
a record that wraps around the end is still contiguous. The reader maps page 0 read-write and
the rest read-only (the kernel refuses anything else); a user ring buffer is the reverse.
Every record starts with an 8-byte header: ``u32 len`` whose bit 31 is BUSY (reserved, not yet
committed) and bit 30 DISCARD, then ``u32 pg_off``; the payload follows and the next record
starts at ``round_up(len + 8, 8)``.

Memory ordering. The kernel publishes ``producer_pos`` and each header with release stores
and reads ``consumer_pos`` with acquire loads. Python has no fences; what this module relies on
is that it reads and writes those words as aligned 8-/4-byte loads and stores through
``memoryview`` casts (single machine instructions). On x86-64 (TSO) every such load is an
acquire and every such store a release, which is exactly the protocol. On weakly ordered
CPUs (arm64, riscv, ppc, s390 is TSO) the reader additionally takes and releases a
``threading.Lock`` - a full barrier in CPython's pthread implementation - after reading
``producer_pos`` (acquire for the batch) and before publishing ``consumer_pos`` (release).
The reader never depends on the content of a record it has not seen committed: it stops at the
first BUSY header.

Lifetime of records. :meth:`RingBuffer.read` yields ``memoryview`` slices of the shared
mapping; each is valid until the iterator is advanced (the space is handed back to the kernel
then). Copy with ``bytes(record)`` to keep one. :meth:`RingBuffer.read_batch` returns copies.
"""

from __future__ import annotations

import array
import asyncio
import collections
import contextlib
import functools
import importlib
import itertools
import mmap as _mmap
import operator
import os
import select
import struct
import threading
import time
from collections.abc import AsyncIterator, Generator, Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar, overload

from . import errors
from . import platform as _platform
from ._maps import Map
from ._sys.fd import FD
from ._types import MapType
from ._uapi import _generated_types as _t

__all__ = ["RecordBatch", "RingBuffer", "RingBufferClosed", "UserRingBuffer"]

_BUSY = _t.BPF_RINGBUF_BUSY_BIT
_DISCARD = _t.BPF_RINGBUF_DISCARD_BIT
_LEN_MASK = ~(_BUSY | _DISCARD) & 0xFFFFFFFF
_HDR = _t.BPF_RINGBUF_HDR_SZ
_U32 = struct.Struct("=I")
_MAX_RUN = 4096
_TSO = _platform.ARCH in ("x86_64", "i386", "s390x")


_COPY_MAX = 512
#: Largest run copied out at once for per-record reads: a record kept by the caller keeps
#: its run's copy alive, so this bounds what one kept record can hold on to.
_RUN_COPY_BYTES = 64 << 10
_MAX_LEN = _LEN_MASK
_FIRST = operator.itemgetter(0)
_BATCH_BYTES = 16 << 20
_getitem = operator.getitem
_SLICES: dict[int, tuple[slice, ...]] = {}
_SLICES_HELD = 1 << 16  # slices cached over all lengths (about 8 MiB at most)


def _slices(length: int, step: int, count: int) -> tuple[slice, ...]:
    """``count`` payload slices of records of ``length`` bytes every ``step`` bytes, relative
    to the first record's header (cached per length, grown on demand), so that cutting a run
    into records allocates nothing but the records."""
    t = _SLICES.get(length)
    if t is None or len(t) < count:
        n = count if t is None else max(count, min(2 * len(t), _MAX_RUN))
        held = sum(map(len, _SLICES.values()))
        if len(_SLICES) >= 64 or held + n > _SLICES_HELD:  # start over rather than grow
            _SLICES.clear()
        t = tuple(slice(o, o + length) for o in range(_HDR, _HDR + n * step, step))
        _SLICES[length] = t
    return t if len(t) == count else t[:count]


@functools.lru_cache(maxsize=256)
def _cutter(length: int, step: int) -> struct.Struct:
    """A struct layout cutting one record (header skipped, padding skipped) out of a run."""
    return struct.Struct(f"8x{length}s{step - 8 - length}x")


def _runs(d32: Any, pos: int, end: int, max_bytes: int = 0, max_len: int = 1 << 32
          ) -> Iterator[tuple[int, int, int, int]]:
    """Walk record headers from byte ``pos`` to ``end`` of a data view (``d32`` is its u32
    cast). Yields (pos, length, step, count): ``count`` consecutive committed records of
    ``length`` bytes every ``step`` bytes; length -1 for one discarded record; count 0 for a
    BUSY record (the walk ends there).

    Runs are found by reading the headers at a fixed stride through a strided memoryview (C
    speed) and checking they all carry the same committed length; the window doubles while
    runs fill it, so variable-sized streams cost little and uniform ones almost nothing.
    With ``max_bytes``, a run of records of at most ``max_len`` bytes spans at most that
    many bytes (or one record).
    """
    window = 16
    while pos < end:
        hdr = d32[pos >> 2]
        if hdr & _BUSY:
            yield pos, 0, 0, 0
            return
        ln = hdr & _LEN_MASK
        step = (ln + 15) & ~7
        if hdr & _DISCARD:
            yield pos, -1, step, 1
            pos += step
            continue
        n = min((end - pos) // step, window)
        if max_bytes and n * step > max_bytes and ln <= max_len:
            n = max(max_bytes // step, 1)
        if n > 1:
            w = step >> 2
            i0 = pos >> 2
            hs = d32[i0 : i0 + n * w : w].tolist()
            if hs.count(ln) == n:
                k = n
                window = min(window * 2, _MAX_RUN)
            else:
                k = 1
                while hs[k] == ln:
                    k += 1
                window = 16 if k > 1 else 2  # sizes vary: look ahead less
        else:
            k = 1
        yield pos, ln, step, k
        pos += k * step


class RingBufferClosed(errors.BPFError):
    """The reader was closed (possibly from another thread) while waiting."""


class _Cursor:
    """The one consumer position of a ring (``consumer_pos`` of a BPF ring buffer,
    ``data_tail`` of a perf ring), owned by the reader and moved only forward.

    Record iterators never keep a position of their own that they might write back later.
    The run of records an iterator has handed out but not finished is registered here as
    ``active``; whoever reads the position next (another ``read()``, a batch, the iterator
    itself when it resumes or is closed) first settles it (:meth:`settle`): the records taken from
    that run are consumed, the rest of the run is cut off (the old iterator yields no more
    of it, so no record is delivered twice) and the position is published. An iterator
    that finds its run settled by someone else restarts from the published position.
    """

    __slots__ = ("active", "fence", "mv")

    def __init__(self, mv: Any, fence: Any) -> None:
        self.mv = mv
        self.fence = fence
        #: [iterator, start, step, count] of the run handed out last, or None.
        self.active: list[Any] | None = None

    def settle(self) -> int:
        """Account for the outstanding run (if any) and return the consumer position."""
        a = self.active
        if a is not None:
            self.active = None
            it, start, step, k = a
            left = operator.length_hint(it)
            if left:
                collections.deque(it, maxlen=0)  # cut the rest off: it is not delivered
            self.publish(start + (k - left) * step)
        return int(self.mv[0])

    def publish(self, pos: int) -> None:
        """Hand the space before ``pos`` back to the kernel (never moves backwards)."""
        if pos > self.mv[0]:
            if self.fence is not None:
                self.fence()
            self.mv[0] = pos


def _map_fd(ring: Any, want: tuple[MapType, ...]) -> tuple[int, int, Any]:
    """(fd, data size, owner) of a ring given as a Map or a raw fd."""
    if isinstance(ring, Map):
        if ring.type not in want:
            raise TypeError(f"{ring!r} is not a {' or '.join(t.name for t in want)} map")
        return ring.fileno(), ring.max_entries, ring
    if isinstance(ring, int | FD):
        m = Map.from_fd(ring if isinstance(ring, int) else ring.fileno())
        if m.type not in want:
            m.close()
            raise TypeError(f"fd {ring} is not a {' or '.join(t.name for t in want)} map")
        return m.fileno(), m.max_entries, m
    raise TypeError(f"expected a ring buffer Map or fd, not {type(ring).__name__}")


class _Ring:
    """One mapped ring: positions and data, plus the reading loops."""

    __slots__ = ("_barrier", "cons", "cons_mm", "cursor", "data", "data32", "fd", "index",
                 "map", "mask", "owned", "prod", "prod_mm", "size")

    def __init__(self, ring: Any, index: int) -> None:
        fd, size, owner = _map_fd(ring, (MapType.RINGBUF,))
        self.owned = owner is not ring
        self.map: Map = owner
        page = _platform.page_size()
        self.fd = fd
        self.size = size
        self.mask = size - 1
        self.index = index
        try:
            self.cons_mm = _mmap.mmap(fd, page, _mmap.MAP_SHARED,
                                      _mmap.PROT_READ | _mmap.PROT_WRITE, offset=0)
        except BaseException:
            if self.owned:  # the map we opened from a raw fd: close it now, not at GC
                owner.close()
            raise
        try:
            self.prod_mm = _mmap.mmap(fd, page + 2 * size, _mmap.MAP_SHARED, _mmap.PROT_READ,
                                      offset=page)
        except BaseException:
            self.cons_mm.close()
            if self.owned:
                owner.close()
            raise
        cons_view: Any = memoryview(self.cons_mm)
        prod_view: Any = memoryview(self.prod_mm)
        self.cons = cons_view[:8].cast("Q")
        self.prod = prod_view[:8].cast("Q")
        self.data: memoryview = prod_view[page:]
        self.data32 = prod_view[page:].cast("I")
        self._barrier = None if _TSO else threading.Lock()
        self.cursor = _Cursor(self.cons, self._fence if self._barrier is not None else None)

    def close(self) -> None:
        self.cursor.active = None
        for mv in (self.cons, self.prod, self.data, self.data32):
            with contextlib.suppress(BufferError):  # a record iterator still alive
                mv.release()
        for mm in (self.cons_mm, self.prod_mm):
            with contextlib.suppress(BufferError):
                mm.close()
        if self.owned:
            self.map.close()

    def _fence(self) -> None:
        b = self._barrier
        if b is not None:
            b.acquire()
            b.release()

    @property
    def available(self) -> int:
        """Bytes submitted (or reserved) and not yet consumed."""
        return int(self.prod[0] - self.cons[0])

    # -- per record --------------------------------------------------------------------------
    def records(self, copy: bool = False) -> Iterator[Any]:
        """Every committed record now in the ring; stops at the first BUSY record or when
        empty. See :meth:`run_iters` for ``copy``."""
        return itertools.chain.from_iterable(self.run_iters(copy))

    def run_iters(self, copy: bool = False) -> Generator[Iterator[Any], None, None]:
        """Yield one C-level iterator per run of same-sized records, so that iterating
        records runs no Python bytecode per record.

        A run (at most :data:`_RUN_COPY_BYTES`) is cut into records by slicing one base
        object with cached slices (:func:`_slices`; ``operator.getitem`` mapped over them):
        with ``copy`` the base is a ``bytes`` copy of the run and records are ``bytes``;
        otherwise records of up to :data:`_COPY_MAX` bytes are ``memoryview`` slices of a
        copy of the run (a copy is cheaper than keeping the mapping exported for small
        records) and larger ones zero-copy ``memoryview`` slices of the mapping.

        The space of a run goes back to the kernel when the next one is asked for; if the
        consumer stops in the middle of a run, exactly the records it took are handed back
        (by the :class:`_Cursor`, also when another read starts while this iterator is
        still alive), so every record is delivered once.
        """
        cur = self.cursor
        prod_mv = self.prod
        data = self.data
        d32 = self.data32
        mask = self.mask
        fence = self._fence if self._barrier is not None else None
        token: list[Any] | None = None
        cons = 0
        cap = _RUN_COPY_BYTES  # runs that are copied; zero-copy runs of large records are not cut
        cap_len = _MAX_LEN if copy else _COPY_MAX
        repeat = itertools.repeat
        try:
            while True:
                cons = cur.settle()
                prod = prod_mv[0]
                if fence is not None:
                    fence()
                if cons >= prod:
                    return
                start = cons & mask
                for pos, ln, step, k in _runs(d32, start, start + (prod - cons), cap, cap_len):
                    if k == 0:  # BUSY: the producer has not committed this one yet
                        return
                    if ln < 0:  # discarded
                        cons += step
                        continue
                    cur.publish(cons)  # hand the records before this run back
                    run: Iterator[Any]
                    if k == 1:  # variable-sized streams: one record, no slicing machinery
                        first = pos + _HDR
                        if copy:
                            base: Any = data[first : first + ln].tobytes()
                        elif ln <= _COPY_MAX:
                            base = memoryview(data[first : first + ln].tobytes())
                        else:
                            base = data[first : first + ln]
                        it: Any = iter((base,))
                        run = it
                    else:
                        nbytes = k * step
                        if copy:
                            base = data[pos : pos + nbytes].tobytes()
                        elif ln <= _COPY_MAX:
                            base = memoryview(data[pos : pos + nbytes].tobytes())
                        else:
                            base = data[pos : pos + nbytes]
                        it = iter(_slices(ln, step, k))
                        run = map(_getitem, repeat(base), it)
                    token = cur.active = [it, cons, step, k]
                    try:
                        yield run
                    finally:
                        del run, it, base
                    if cur.active is not token:
                        token = None
                        break  # another read settled this run: go on from its position
                    cur.active = token = None
                    cons += k * step
                else:
                    cur.publish(cons)
        finally:
            if token is not None and cur.active is token:
                cur.settle()  # stopped inside a run: exactly what was taken is consumed
            elif token is None:
                cur.publish(cons)  # discarded records at the end

    def drain_into(self, out: RecordBatch, limit: int) -> int:
        """Copy up to ``limit`` committed records into ``out`` (one copy of the ring's bytes;
        offsets and lengths filled at C speed for runs of same-sized records); returns how
        many. Releases their space."""
        cons = self.cursor.settle()
        prod = self.prod[0]
        self._fence()
        if cons >= prod:
            return 0
        start = cons & self.mask
        span = prod - cons
        base = len(out.data)
        # One copy of the whole range (contiguous thanks to the double mapping).
        out.data += self.data[start : start + span]
        b32 = memoryview(out.data)[base : base + span].cast("I")
        used = 0
        n = 0
        try:
            for pos, ln, step, k in _runs(b32, 0, span):
                if k == 0:
                    break
                if ln < 0:
                    used = pos + step
                    continue
                take = min(k, limit - n)
                first = base + pos + 8
                out.offsets.extend(range(first, first + take * step, step))
                out.lengths.extend(itertools.repeat(ln, take))
                n += take
                used = pos + take * step
                if n >= limit:
                    break
        finally:
            b32.release()
        del out.data[base + used :]
        self.cursor.publish(cons + used)
        return n

    def batch(self, dtype: Any, limit: int | None, copy: bool = True) -> tuple[Any, int]:
        """Fixed-size records as a numpy structured array, without Python per record.

        Returns (array, bytes to hand back). Records whose length is not ``dtype.itemsize``
        end the batch. With ``copy`` the space is handed back here (the second item is then
        0); without, the array views the ring and the caller must :meth:`commit` later.
        """
        np = importlib.import_module("numpy")
        item = dtype.itemsize
        stride = (item + 15) & ~7
        cons = self.cursor.settle()
        prod = self.prod[0]
        self._fence()
        avail = prod - cons
        n = avail // stride if avail > 0 else 0
        if limit is not None:
            n = min(n, limit)
        if n <= 0:
            return np.empty(0, dtype), 0
        start = cons & self.mask
        base = self.data
        hdrs = np.ndarray((n,), np.uint32, buffer=base, offset=start, strides=(stride,))
        if (hdrs == item).all():  # committed, not discarded, the expected size
            k = n
            keep = None
        else:
            bad = ((hdrs & _LEN_MASK) != item) | ((hdrs & _BUSY) != 0)
            stop = np.flatnonzero(bad)
            k = int(stop[0]) if len(stop) else n
            keep = (hdrs[:k] & _DISCARD) == 0
            if keep.all():
                keep = None
        raw = np.ndarray((k,), np.dtype((np.void, item)), buffer=base, offset=start + _HDR,
                         strides=(stride,))
        if keep is not None:
            out = raw[keep].view(dtype)
        elif copy:
            out = raw.copy().view(dtype)
        else:
            out = raw.view(dtype)
            out.flags.writeable = False
            return out, k * stride
        self.cursor.publish(cons + k * stride)
        return out, 0

    def head_mismatch(self, item: int) -> int | None:
        """Length of the first record if it is committed and not ``item`` bytes long."""
        cons = self.cursor.settle()
        if cons >= self.prod[0]:
            return None
        self._fence()
        hdr = self.data32[(cons & self.mask) >> 2]
        if hdr & _BUSY or (hdr & _LEN_MASK) == item:
            return None
        return int(hdr & _LEN_MASK)

    def skip_head(self) -> None:
        cons = self.cursor.settle()
        hdr = self.data32[(cons & self.mask) >> 2]
        self.cursor.publish(cons + (((hdr & _LEN_MASK) + 15) & ~7))

    def commit(self, nbytes: int) -> None:
        if nbytes:
            self.cursor.publish(self.cursor.settle() + nbytes)


_Reader = TypeVar("_Reader", bound="_EpollReader")


class _EpollReader:
    """What the ring and perf readers share: an epoll instance, a wake pipe so that
    :meth:`close` from another thread interrupts a blocked reader, and a count of threads
    inside a read so that the mappings are released only once the last one leaves."""

    _closed_error: type[errors.BPFError] = errors.BPFError
    _what = "reader"

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._epoll.register(self._wake_r, select.EPOLLIN)
        self._closed = False
        self._released = False
        self._users = 0
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._closed

    def fileno(self) -> int:
        """The epoll fd: readable when there is data (for ``select`` and event loops)."""
        return self._epoll.fileno()

    def __enter__(self: _Reader) -> _Reader:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Release the buffers and wake any thread blocked waiting or reading (it raises the
        reader's ``*Closed`` error; iterating the reader itself just ends). Idempotent. If
        another thread is inside a read, the mappings go when that read returns."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            busy = self._users > 0
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if not busy:
            self._release()

    def _enter(self) -> None:
        with self._lock:
            if self._closed:
                raise self._closed_error(f"{self._what} is closed")
            self._users += 1

    def _exit(self) -> None:
        with self._lock:
            self._users -= 1
            last = self._closed and self._users == 0
        if last:
            self._release()

    def _release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        try:
            self._free()
        finally:
            self._epoll.close()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _free(self) -> None:
        raise NotImplementedError

    def _wait(self, timeout: float | None) -> bool:
        """epoll_wait; True if anything (other than the wake pipe) became ready."""
        events = self._epoll.poll(-1 if timeout is None else timeout)
        if self._closed:
            raise self._closed_error(f"{self._what} is closed")
        return bool(events)


class RecordBatch(Sequence[memoryview]):
    """Records taken in one go: one ``bytearray`` holding them all, plus their offsets and
    lengths (``array('q')``). Indexing or iterating gives memoryviews (made on demand, at C
    speed when iterating); :meth:`numpy` views the records as a structured array."""

    __slots__ = ("data", "lengths", "offsets")

    def __init__(self) -> None:
        self.data = bytearray()
        self.offsets = array.array("q")
        self.lengths = array.array("q")

    def __len__(self) -> int:
        return len(self.offsets)

    @overload
    def __getitem__(self, i: int) -> memoryview: ...
    @overload
    def __getitem__(self, i: slice) -> list[memoryview]: ...
    def __getitem__(self, i: int | slice) -> memoryview | list[memoryview]:
        if isinstance(i, slice):
            return list(self._iter(self.offsets[i], self.lengths[i]))
        off = self.offsets[i]
        return memoryview(self.data)[off : off + self.lengths[i]]

    def _iter(self, offs: Any, lens: Any) -> Iterator[memoryview]:
        getitem = memoryview(self.data).__getitem__
        return map(getitem, map(slice, offs, map(operator.add, offs, lens)))

    def __iter__(self) -> Iterator[memoryview]:
        return self._iter(self.offsets, self.lengths)

    def numpy(self, dtype: Any) -> Any:
        """The records as a structured array of ``dtype`` (each must be at least
        ``dtype.itemsize`` bytes; extra bytes are ignored)."""
        np = importlib.import_module("numpy")
        dt = np.dtype(dtype)
        offs = np.frombuffer(self.offsets, np.int64)
        if len(offs) and int(np.frombuffer(self.lengths, np.int64).min()) < dt.itemsize:
            raise ValueError(f"some records are shorter than the dtype ({dt.itemsize} bytes)")
        raw = np.frombuffer(self.data, np.uint8)
        idx = offs[:, None] + np.arange(dt.itemsize)
        return raw[idx].view(dt).reshape(len(offs))

    def __repr__(self) -> str:
        return f"<RecordBatch {len(self)} records, {len(self.data)} bytes>"


class RingBuffer(_EpollReader):
    """Reader of one or several ``BPF_MAP_TYPE_RINGBUF`` maps, sharing one epoll instance.

    ::

        with ebpf.RingBuffer(events) as rb:
            for record in rb.read(timeout=1.0):   # memoryview per record
                ...
            batch = rb.read_batch(dtype=EVENT_DTYPE)   # numpy structured array

        async for record in ebpf.RingBuffer(events):   # asyncio
            ...

    ``read`` drains what is there, waiting up to ``timeout`` only when nothing is; iterating
    the reader itself blocks for ever (until :meth:`close`, from any thread). A reader is meant
    for one consuming thread at a time.
    """

    _closed_error = RingBufferClosed
    _what = "ring buffer reader"

    def __init__(self, *rings: Any) -> None:
        if not rings:
            raise TypeError("RingBuffer needs at least one ring buffer map")
        super().__init__()
        self._rings: list[_Ring] = []
        #: Records dropped by ``read_batch(on_mismatch="skip")``.
        self.mismatched = 0
        try:
            for r in rings:
                self.add(r)
        except BaseException:
            self.close()
            raise

    def add(self, ring: Any) -> int:
        """Add another ring to this reader; returns its index."""
        r = _Ring(ring, len(self._rings))
        self._rings.append(r)
        self._epoll.register(r.fd, select.EPOLLIN)
        return r.index

    @property
    def rings(self) -> list[Map]:
        """The maps read, in the order added."""
        return [r.map for r in self._rings]

    def _free(self) -> None:
        for r in self._rings:
            with contextlib.suppress(Exception):
                self._epoll.unregister(r.fd)
            r.close()

    def __repr__(self) -> str:
        return f"<RingBuffer rings={len(self._rings)}{' closed' if self._closed else ''}>"

    # -- waiting -------------------------------------------------------------------------
    def available(self) -> int:
        """Bytes waiting in all rings."""
        return sum(r.available for r in self._rings)

    def poll(self, timeout: float | None = None) -> bool:
        """Wait until some ring has data (True) or ``timeout`` seconds pass (False; None waits
        for ever). Raises :class:`RingBufferClosed` once the reader is closed."""
        self._enter()
        try:
            return self._poll(timeout)
        finally:
            self._exit()

    def _poll(self, timeout: float | None) -> bool:
        for r in self._rings:
            if r.prod[0] != r.cons[0]:
                return True
        return self._wait(timeout)

    # -- reading ---------------------------------------------------------------------------
    def read(self, timeout: float | None = 0.0, *, copy: bool = False) -> Iterator[Any]:
        """Iterate over the records in the rings (oldest first within each ring).

        Waits up to ``timeout`` seconds (None: for ever) only when no record is there at all,
        then drains: records that arrive while draining are returned too.

        Records are ``memoryview``s, valid until the iterator is advanced (keep one with
        ``bytes(record)``); records of up to 512 bytes are in fact views of a copy, which cost
        less than views of the mapping (one such record kept alive keeps the copy of its run,
        at most 64 KiB, alive too: ``bytes(record)`` keeps just the record). With
        ``copy=True`` records are ``bytes`` - the fastest form for small records, and valid
        for ever.
        """
        return itertools.chain.from_iterable(self._read_runs(timeout, False, copy))

    def read_tagged(self, timeout: float | None = 0.0, *, copy: bool = False
                    ) -> Iterator[tuple[int, Any]]:
        """Like :meth:`read`, yielding (ring index, record) to tell several rings apart."""
        return itertools.chain.from_iterable(self._read_runs(timeout, True, copy))

    def _read_runs(self, timeout: float | None, tagged: bool, copy: bool
                   ) -> Iterator[Iterator[Any]]:
        self._enter()
        try:
            yield from self._read_runs_entered(timeout, tagged, copy)
        finally:
            self._exit()

    def _read_runs_entered(self, timeout: float | None, tagged: bool, copy: bool
                           ) -> Iterator[Iterator[Any]]:
        waited = False
        delivered = False
        while True:
            if self._closed:
                raise RingBufferClosed("ring buffer reader is closed")
            got = False
            for r in self._rings:
                before = r.cons[0]
                runs = r.run_iters(copy)
                try:
                    if tagged:
                        tag = itertools.repeat(r.index)
                        for run in runs:
                            yield zip(tag, run, strict=False)
                    else:
                        yield from runs
                finally:
                    runs.close()
                if r.cons[0] != before:
                    got = True
            if got:
                delivered = True
                continue
            if delivered or waited or timeout == 0.0:
                return
            if not self._poll(timeout):
                return
            waited = True

    def __iter__(self) -> Iterator[memoryview]:
        """Block for ever yielding records; ends when the reader is closed."""
        try:
            while True:
                yield from self.read(None)
        except RingBufferClosed:
            return

    def stream(self, idle_timeout: float | None = None) -> Iterator[memoryview]:
        """Yield records as they come; stop after ``idle_timeout`` seconds without any (None:
        never) or when the reader is closed."""
        try:
            while True:
                got = False
                for rec in self.read(idle_timeout):
                    got = True
                    yield rec
                if not got:
                    return
        except RingBufferClosed:
            return

    def read_batch(self, dtype: Any = None, *, timeout: float | None = 0.0,
                   max_records: int | None = None, on_mismatch: str = "raise") -> Any:
        """Take many records at once, without a Python call per record.

        With ``dtype`` (a numpy dtype whose ``itemsize`` is the records' size) returns a numpy
        structured array, copied out of the ring (whose space is then released). A record of
        another size ends the vectorised pass; when such a record is first in line,
        ``on_mismatch="raise"`` raises :class:`ValueError` and leaves it for :meth:`read`,
        ``"skip"`` drops it and counts it in :attr:`mismatched`.

        Without ``dtype`` returns a :class:`RecordBatch`: one copy of the bytes plus offsets
        and lengths, indexable and iterable as memoryviews.

        Waits up to ``timeout`` seconds only when the rings are empty. ``max_records``
        defaults to about 16 MiB worth of records per call; call again for more.
        """
        self._enter()
        try:
            return self._read_batch(dtype, timeout, max_records, on_mismatch)
        finally:
            self._exit()

    def _read_batch(self, dtype: Any, timeout: float | None, max_records: int | None,
                    on_mismatch: str) -> Any:
        if dtype is None:
            out = RecordBatch()
            if not self.available() and timeout != 0.0 and not self._poll(timeout):
                return out
            limit = max_records if max_records is not None else 1 << 62
            for r in self._rings:
                limit -= r.drain_into(out, limit)
                if limit <= 0:
                    break
            return out
        np = importlib.import_module("numpy")
        dt = np.dtype(dtype)
        if not self.available() and timeout != 0.0 and not self._poll(timeout):
            return np.empty(0, dt)
        parts = []
        if max_records is None:
            # Arrays of at most ~16 MiB: glibc serves them from memory it keeps (bigger ones
            # are fresh mmaps, whose page faults would cost more than the copy itself).
            max_records = max(1, _BATCH_BYTES // dt.itemsize)
        left = max_records
        for r in self._rings:
            arr = self._ring_batch(r, dt, left, on_mismatch)
            if len(arr):
                parts.append(arr)
                if left is not None:
                    left -= len(arr)
                    if left <= 0:
                        break
        if not parts:
            return np.empty(0, dt)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _ring_batch(self, r: _Ring, dt: Any, left: int | None, on_mismatch: str) -> Any:
        while True:
            arr, _ = r.batch(dt, left)
            if len(arr) or r.prod[0] == r.cons[0]:
                return arr
            odd = r.head_mismatch(dt.itemsize)
            if odd is None:
                return arr  # BUSY or only discarded records: nothing more now
            if on_mismatch != "skip":
                raise ValueError(f"ring {r.index}: record of {odd} bytes does not match a "
                                 f"dtype of {dt.itemsize} bytes (read it with read())")
            r.skip_head()
            self.mismatched += 1

    @contextlib.contextmanager
    def view_batch(self, dtype: Any, *, ring: int = 0,
                   max_records: int | None = None) -> Iterator[Any]:
        """Zero-copy batch: a read-only numpy array *viewing* the ring's records, valid inside
        the ``with`` block; their space is handed back to the kernel when the block ends.

        ::

            with rb.view_batch(EVENT_DTYPE) as events:
                totals += events["bytes"].sum()
        """
        np = importlib.import_module("numpy")
        dt = np.dtype(dtype)
        r = self._rings[ring]
        self._enter()
        try:
            arr, pending = r.batch(dt, max_records, copy=False)
            try:
                yield arr
            finally:
                del arr
                r.commit(pending)
        finally:
            self._exit()

    # -- asyncio ---------------------------------------------------------------------------
    def __aiter__(self) -> AsyncIterator[memoryview]:
        return self.aread()

    async def aread(self) -> AsyncIterator[memoryview]:
        """Async iteration: wait on the epoll fd through the running loop's ``add_reader``;
        ends when the reader is closed."""
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        self._enter()
        try:
            fd = self._epoll.fileno()
            loop.add_reader(fd, ready.set)
            try:
                while not self._closed:
                    ready.clear()
                    got = False
                    for r in self._rings:
                        for rec in r.records():
                            got = True
                            yield rec
                    if got or any(r.prod[0] != r.cons[0] for r in self._rings):
                        continue
                    await ready.wait()
            finally:
                loop.remove_reader(fd)
        finally:
            self._exit()


class UserRingBuffer:
    """Producer side of a ``BPF_MAP_TYPE_USER_RINGBUF`` (kernel >= 6.1): Python writes
    records, BPF programs drain them with ``bpf_user_ringbuf_drain``.

    Mapping (the reverse of a kernel ring): page 0 (``consumer_pos``, advanced by the kernel)
    read-only; page 1 (``producer_pos``) and the double-mapped data read-write. The protocol
    is libbpf's: :meth:`reserve` writes the header with the BUSY bit set and advances
    ``producer_pos`` at once (the kernel stops at a BUSY record); :meth:`submit` /
    :meth:`discard` then store the final length word (release). One producer thread at a
    time.

    ::

        with ebpf.UserRingBuffer(m) as urb:
            rec = urb.reserve(16); rec[:] = payload; urb.submit(rec)
            urb.write(b"...")          # reserve + copy + submit
    """

    def __init__(self, ring: Any) -> None:
        fd, size, owner = _map_fd(ring, (MapType.USER_RINGBUF,))
        self._owned = owner is not ring
        self._map: Map = owner
        self._fd = fd
        page = _platform.page_size()
        self._size = size
        self._mask = size - 1
        try:
            self._cons_mm = _mmap.mmap(fd, page, _mmap.MAP_SHARED, _mmap.PROT_READ, offset=0)
        except BaseException:
            if self._owned:
                owner.close()
            raise
        try:
            self._prod_mm = _mmap.mmap(fd, page + 2 * size, _mmap.MAP_SHARED,
                                       _mmap.PROT_READ | _mmap.PROT_WRITE, offset=page)
        except BaseException:
            self._cons_mm.close()
            if self._owned:
                owner.close()
            raise
        cv: Any = memoryview(self._cons_mm)
        pv: Any = memoryview(self._prod_mm)
        self._cons = cv[:8].cast("Q")
        self._prod = pv[:8].cast("Q")
        self._data: memoryview = pv[page:]
        self._data32 = pv[page:].cast("I")
        self._pending: dict[int, tuple[int, memoryview]] = {}
        self._barrier = None if _TSO else threading.Lock()
        self._closed = False

    def _fence(self) -> None:
        if self._barrier is not None:
            self._barrier.acquire()
            self._barrier.release()

    @property
    def map(self) -> Map:
        return self._map

    @property
    def free(self) -> int:
        """Bytes that can still be reserved (headers and padding included)."""
        return self._size - int(self._prod[0] - self._cons[0])

    def reserve(self, size: int) -> memoryview:
        """Reserve ``size`` bytes; returns a writable view of them. Raises
        :class:`BufferError` when the ring is full (:meth:`wait_free` waits for space)."""
        if self._closed:
            raise ValueError("user ring buffer is closed")
        if size <= 0:
            raise ValueError(f"bad record size {size}")
        total = (size + 15) & ~7
        if total > self._size:
            raise ValueError(f"record of {size} bytes does not fit a {self._size}-byte ring")
        cons = self._cons[0]
        self._fence()  # acquire consumer_pos
        prod = self._prod[0]
        if total > self._size - (prod - cons):
            raise BufferError("user ring buffer is full")
        off = prod & self._mask
        self._data32[off >> 2] = size | _BUSY
        self._data32[(off >> 2) + 1] = 0
        self._fence()  # release: header before producer_pos
        self._prod[0] = prod + total
        rec = self._data[off + 8 : off + 8 + size]
        self._pending[id(rec)] = (off, rec)
        return rec

    def _publish(self, record: memoryview, flag: int) -> None:
        entry = self._pending.pop(id(record), None)
        if entry is None or entry[1] is not record:
            raise ValueError("record was not reserved from this ring (or already submitted)")
        off = entry[0]
        size = record.nbytes
        record.release()
        self._fence()  # release: payload before the length word
        self._data32[off >> 2] = size | flag

    def submit(self, record: memoryview) -> None:
        """Publish a reserved record to the kernel (the view is released)."""
        self._publish(record, 0)

    def discard(self, record: memoryview) -> None:
        """Give a reserved record back; the kernel skips it."""
        self._publish(record, _DISCARD)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Reserve, copy ``data`` in, submit."""
        mv = memoryview(data).cast("B")
        rec = self.reserve(mv.nbytes)
        rec[:] = mv
        self.submit(rec)

    def wait_free(self, size: int, timeout: float | None = None) -> bool:
        """Wait until ``size`` bytes can be reserved (the kernel signals ``POLLOUT`` on the
        map fd after a drain); returns False on timeout."""
        need = (size + 15) & ~7
        deadline = None if timeout is None else time.monotonic() + timeout
        p = select.poll()
        p.register(self._fd, select.POLLOUT)
        while self.free < need:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            # The wakeup may race with our check: cap each wait so a missed one costs little.
            p.poll(10 if left is None else min(10, max(1, int(left * 1000))))
        return True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for _, rec in self._pending.values():
            rec.release()
        self._pending.clear()
        for mv in (self._cons, self._prod, self._data, self._data32):
            mv.release()
        for mm in (self._cons_mm, self._prod_mm):
            with contextlib.suppress(BufferError):
                mm.close()
        if self._owned:
            self._map.close()

    def __enter__(self) -> UserRingBuffer:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
