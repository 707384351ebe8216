"""Perf buffers: read what BPF programs send with ``bpf_perf_event_output``.

Kernel: ``BPF_MAP_TYPE_PERF_EVENT_ARRAY`` (Linux >= 4.3); prefer ring buffers on >= 5.8.

One perf event per CPU (``PERF_TYPE_SOFTWARE``/``PERF_COUNT_SW_BPF_OUTPUT``,
``sample_type = PERF_SAMPLE_RAW``, one wakeup per sample unless a watermark is asked for),
stored in the map at that CPU's index and mapped as 1 metadata page + 2^n data pages. The
metadata page (``struct perf_event_mmap_page``) holds ``data_head`` (written by the kernel,
read with acquire) and ``data_tail`` (written by us with release; the kernel will not overwrite
data past it). Records are ``perf_event_header`` + body; a ``PERF_RECORD_SAMPLE`` body is
``u32 size`` + the raw bytes (padded by the kernel so the record is 8-byte aligned; the
padding is part of what you get, as with libbpf). ``PERF_RECORD_LOST`` carries how many
samples the kernel dropped because the buffer was full; they are added up in :attr:`lost`.

Samples are returned as ``bytes`` (sliced straight off the mapping: for the small records
perf buffers carry that is cheaper than a memoryview, and the data stays valid); a record
that wraps around the end of the (not double-mapped) data area is reassembled. Ordering
assumptions are those of :mod:`ebpf.ringbuf`.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib
import itertools
import mmap as _mmap
import operator
import select
import struct
import sys
import threading
from collections.abc import Generator, Iterator, Sequence
from typing import Any

from . import errors
from . import platform as _platform
from ._maps import Map
from ._sys import syscall as _sc
from ._sys.fd import FD
from ._types import MapType
from ._uapi import _arch
from ._uapi import _generated_types as _t
from .ringbuf import _Cursor, _EpollReader

__all__ = ["PerfBuffer", "PerfBufferClosed"]

_IOC_ENABLE = _arch.ioc("", "$", 0)
_IOC_DISABLE = _arch.ioc("", "$", 1)
_SAMPLE = _t.PERF_RECORD_SAMPLE
_LOST = _t.PERF_RECORD_LOST
_HEAD_OFF = _t.PerfEventMmapPage.data_head.offset
_TAIL_OFF = _t.PerfEventMmapPage.data_tail.offset
_DOFF_OFF = _t.PerfEventMmapPage.data_offset.offset
_DSIZE_OFF = _t.PerfEventMmapPage.data_size.offset
_TSO = _platform.ARCH in ("x86_64", "i386", "s390x")
_LITTLE = sys.byteorder == "little"
_MAX_RUN = 4096
_HDR = struct.Struct("=IHH")  # struct perf_event_header
_COPY_MAX = 2048
_FIRST = operator.itemgetter(0)
_BATCH_BYTES = 16 << 20


@functools.lru_cache(maxsize=256)
def _cutter(raw: int, rsize: int) -> struct.Struct:
    """Cuts a sample's raw bytes out of a record (header and size word skipped)."""
    return struct.Struct(f"12x{raw}s{rsize - 12 - raw}x")


@functools.lru_cache(maxsize=64)
def _void_dtype(item: int) -> Any:
    """``np.void`` of ``item`` bytes: runs are copied as opaque items, not field by field."""
    np = importlib.import_module("numpy")
    return np.dtype((np.void, item))


_U32 = struct.Struct("=I")
_U64 = struct.Struct("=Q")


class PerfBufferClosed(errors.BPFError):
    """The reader was closed (possibly from another thread) while waiting."""


def _online_cpus() -> list[int]:
    return _platform.online_cpus()


class _CPURing:
    """The mapped perf ring of one CPU."""

    __slots__ = ("_barrier", "cpu", "cursor", "d32", "data", "doff", "fd", "head", "lost",
                 "mask", "mm", "size", "tail")

    def __init__(self, cpu: int, pages: int, wakeup_events: int, watermark: int) -> None:
        attr = _t.PerfEventAttr()
        attr.type = _t.PERF_TYPE_SOFTWARE
        attr.size = ctypes.sizeof(attr)
        attr.config = _t.PERF_COUNT_SW_BPF_OUTPUT
        attr.sample_type = _t.PERF_SAMPLE_RAW
        attr.sample_period = 1
        if watermark:
            attr.watermark = 1
            attr.wakeup_watermark = watermark
        else:
            attr.wakeup_events = wakeup_events
        self.cpu = cpu
        self.fd: FD = _sc.perf_event_open(attr, -1, cpu)
        page = _platform.page_size()
        try:
            self.mm = _mmap.mmap(self.fd.fileno(), (1 + pages) * page, _mmap.MAP_SHARED,
                                 _mmap.PROT_READ | _mmap.PROT_WRITE)
        except BaseException:
            self.fd.close()
            raise
        meta: Any = memoryview(self.mm)
        self.head = meta[_HEAD_OFF : _HEAD_OFF + 8].cast("Q")
        self.tail = meta[_TAIL_OFF : _TAIL_OFF + 8].cast("Q")
        doff = meta[_DOFF_OFF : _DOFF_OFF + 8].cast("Q")[0] or page
        dsize = meta[_DSIZE_OFF : _DSIZE_OFF + 8].cast("Q")[0] or pages * page
        self.size = dsize
        self.mask = dsize - 1
        self.doff = doff
        self.data: memoryview = meta[doff : doff + dsize]
        self.d32 = meta[doff : doff + dsize].cast("I")
        self.lost = 0
        self._barrier = None if _TSO else threading.Lock()
        self.cursor = _Cursor(self.tail, self._fence if self._barrier is not None else None)

    def enable(self) -> None:
        _sc.ioctl(self.fd.fileno(), _IOC_ENABLE, 0, "PERF_EVENT_IOC_ENABLE")

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            _sc.ioctl(self.fd.fileno(), _IOC_DISABLE, 0, "PERF_EVENT_IOC_DISABLE")
        for mv in (self.head, self.tail, self.data, self.d32):
            with contextlib.suppress(BufferError):  # a record iterator still alive
                mv.release()
        with contextlib.suppress(BufferError):
            self.mm.close()
        self.fd.close()

    def _fence(self) -> None:
        b = self._barrier
        if b is not None:
            b.acquire()
            b.release()

    @property
    def available(self) -> int:
        return int(self.head[0] - self.tail[0])

    def records(self) -> Iterator[bytes]:
        """The raw bytes of every sample now in this CPU's ring (LOST records are counted)."""
        return itertools.chain.from_iterable(self.run_iters())

    def run_iters(self) -> Generator[Iterator[bytes], None, None]:
        """Yield one C-level iterator per run of identical sample headers (``bytes`` sliced
        straight off the mapping over ``range``s: for samples this small a copy costs less
        than a memoryview, and it stays valid); a record wrapping around the end of the data
        area comes alone. A run's space goes back to the kernel when the next is asked for;
        stopping in the middle hands back exactly what was taken."""
        cur = self.cursor
        head_mv = self.head
        d32 = self.d32
        data = self.data
        getitem = self.mm.__getitem__
        doff = self.doff
        size, mask = self.size, self.mask
        fence = self._fence if self._barrier is not None else None
        token: list[Any] | None = None
        tail = 0
        try:
            while True:
                tail = cur.settle()
                head = head_mv[0]
                if fence is not None:
                    fence()
                if tail >= head:
                    return
                while tail < head:
                    off = tail & mask
                    it: Any
                    if off + 12 > size or off + (d32[(off >> 2) + 1] >> 16) > size:
                        # The record wraps around the end of the data area: copy it out.
                        rsize, rec = _take_one(self, off)
                        if rec is None:
                            tail += rsize
                            continue
                        cur.publish(tail)
                        it = iter((rec,))
                        token = cur.active = [it, tail, rsize, 1]
                        yield it
                        del it
                        if cur.active is not token:
                            token = None
                            break
                        cur.active = token = None
                        tail += rsize
                        continue
                    w0 = d32[off >> 2]
                    w1 = d32[(off >> 2) + 1]
                    rsize = w1 >> 16
                    if rsize == 0:  # corrupt: never loop for ever
                        tail = head
                        cur.publish(tail)
                        break
                    if w0 != _SAMPLE:
                        if w0 == _LOST:
                            i = (off >> 2) + 4
                            self.lost += d32[i] | (d32[i + 1] << 32)
                        tail += rsize
                        continue
                    raw = d32[(off >> 2) + 2]
                    # A run of identical headers, none crossing the end of the data area.
                    n = min((head - tail) // rsize, (size - off) // rsize, _MAX_RUN)
                    k = 1
                    if n > 1:
                        step = rsize >> 2
                        i0 = off >> 2
                        h0 = d32[i0 : i0 + n * step : step].tolist()
                        h1 = d32[i0 + 1 : i0 + 1 + n * step : step].tolist()
                        h2 = d32[i0 + 2 : i0 + 2 + n * step : step].tolist()
                        if h0.count(_SAMPLE) == n and h1.count(w1) == n and h2.count(raw) == n:
                            k = n
                        else:
                            while k < n and h0[k] == _SAMPLE and h1[k] == w1 and h2[k] == raw:
                                k += 1
                    cur.publish(tail)  # hand the records before this run back
                    if raw <= _COPY_MAX:
                        it = _cutter(raw, rsize).iter_unpack(data[off : off + k * rsize])
                        run: Iterator[bytes] = map(_FIRST, it)
                    else:
                        first = doff + off + 12
                        it = iter(range(first, first + k * rsize, rsize))
                        run = map(getitem, map(slice, it, range(first + raw,
                                                                first + raw + k * rsize,
                                                                rsize)))
                    token = cur.active = [it, tail, rsize, k]
                    try:
                        yield run
                    finally:
                        del run, it
                    if cur.active is not token:
                        token = None
                        break  # another read settled this run: go on from its position
                    cur.active = token = None
                    tail += k * rsize
                else:
                    cur.publish(tail)  # LOST or unknown records at the end
        finally:
            if token is not None and cur.active is token:
                cur.settle()  # stopped inside a run: exactly what was taken is consumed
            elif token is None:
                cur.publish(tail)

    def batch(self, np: Any, out: Any, pos: int) -> int:
        """Copy waiting samples into ``out`` (a contiguous 1-D ``np.void`` array of the
        dtype's itemsize) from index ``pos`` on, until it is full or the ring empty (LOST
        records are counted and consumed either way); returns the new ``pos``. Two numpy
        operations per contiguous run of same-sized samples: one check of the headers
        (``type|misc|size`` as one u64 per record) and one strided copy of the first
        ``itemsize`` bytes of each sample; no Python per record."""
        item = out.itemsize
        cap = len(out)
        tail = self.cursor.settle()
        head = self.head[0]
        self._fence()
        d32, size, mask, mm, doff = self.d32, self.size, self.mask, self.mm, self.doff
        u64 = np.uint64
        while tail < head:
            off = tail & mask
            if off + 12 > size or off + (d32[(off >> 2) + 1] >> 16) > size:
                rsize, rec = _take_one(self, off)  # wraps around the end: copy it
                if rec is not None:
                    if len(rec) < item:
                        raise ValueError(f"CPU {self.cpu}: sample of {len(rec)} bytes "
                                         f"is smaller than the dtype ({item} bytes)")
                    if pos >= cap:
                        break
                    out[pos] = np.frombuffer(rec, out.dtype, 1)[0]
                    pos += 1
                tail += rsize
                continue
            w0 = d32[off >> 2]
            w1 = d32[(off >> 2) + 1]
            rsize = w1 >> 16
            if rsize == 0:  # corrupt: never loop for ever
                tail = head
                break
            if w0 != _SAMPLE:
                if w0 == _LOST:
                    i = (off >> 2) + 4
                    self.lost += d32[i] | (d32[i + 1] << 32)
                tail += rsize
                continue
            raw = d32[(off >> 2) + 2]
            if raw < item:
                raise ValueError(f"CPU {self.cpu}: sample of {raw} bytes is smaller than "
                                 f"the dtype ({item} bytes)")
            if pos >= cap:
                break
            n = min((head - tail) // rsize, (size - off) // rsize, cap - pos)
            k = n
            if n > 1:
                at = doff + off
                # With PERF_SAMPLE_RAW alone the kernel pads the raw size so that it is
                # always rsize - 12: equal type|misc|size words mean equal samples.
                hdr = np.ndarray((n,), u64, mm, at, (rsize,))
                same = hdr == u64(w0 | (w1 << 32) if _LITTLE else (w0 << 32) | w1)
                if raw != rsize - 12:
                    same &= np.ndarray((n,), np.uint32, mm, at + 8, (rsize,)) == raw
                if not same.all():
                    k = int(same.argmin())
            out[pos : pos + k] = np.ndarray((k,), out.dtype, mm, doff + off + 12,
                                            (rsize,))
            pos += k
            tail += k * rsize
        self.cursor.publish(tail)
        return pos


def _copy_wrapped(data: memoryview, off: int, size: int, n: int) -> bytes:
    """``n`` bytes from ``off`` of a ring of ``size`` bytes, wrapping around its end."""
    if off + n <= size:
        return bytes(data[off : off + n])
    return bytes(data[off:size]) + bytes(data[: n - (size - off)])


def _take_one(ring: _CPURing, off: int) -> tuple[int, bytes | None]:
    """(record size, sample bytes or None) of the record at ``off``, copied; LOST records
    are counted."""
    hdr = _copy_wrapped(ring.data, off, ring.size, 8)
    rtype, _, rsize = _HDR.unpack(hdr)
    if rsize == 0:
        raise errors.ParseError(f"CPU {ring.cpu}: perf record of size 0", off)
    rec = _copy_wrapped(ring.data, off, ring.size, rsize)
    if rtype == _SAMPLE:
        (raw,) = _U32.unpack_from(rec, 8)
        return rsize, rec[12 : 12 + raw]
    if rtype == _LOST:
        ring.lost += _U64.unpack_from(rec, 16)[0]
    return rsize, None


class PerfBuffer(_EpollReader):
    """Reader of a ``BPF_MAP_TYPE_PERF_EVENT_ARRAY``: one ring per CPU, one epoll.

    ::

        with ebpf.PerfBuffer(events, pages=64) as pb:
            for cpu, record in pb.read(timeout=1.0):
                ...
            pb.lost            # samples the kernel dropped (PERF_RECORD_LOST)

    ``pages`` (a power of two) is the data size of each CPU's ring in pages. ``cpus`` limits
    the CPUs opened (default: every online CPU). With ``watermark`` (bytes) the kernel wakes
    the reader only once that much data is waiting instead of after every sample.
    """

    _closed_error = PerfBufferClosed
    _what = "perf buffer reader"

    def __init__(self, perf_map: Map | int | FD, *, pages: int = 64,
                 cpus: Sequence[int] | None = None, wakeup_events: int = 1,
                 watermark: int = 0) -> None:
        if pages < 1 or pages & (pages - 1):
            raise ValueError(f"pages must be a power of two, got {pages}")
        super().__init__()
        if isinstance(perf_map, Map):
            self._map = perf_map
            self._owned = False
        else:
            self._map = Map.from_fd(perf_map if isinstance(perf_map, int)
                                    else perf_map.fileno())
            self._owned = True
        self._rings: dict[int, _CPURing] = {}
        self._order: list[_CPURing] = []
        if self._map.type != MapType.PERF_EVENT_ARRAY:
            self.close()
            raise TypeError(f"{self._map!r} is not a PERF_EVENT_ARRAY map")
        try:
            for cpu in (list(cpus) if cpus is not None else _online_cpus()):
                if cpu >= self._map.max_entries:
                    raise ValueError(f"CPU {cpu} has no slot in a perf event array of "
                                     f"{self._map.max_entries} entries")
                ring = _CPURing(cpu, pages, wakeup_events, watermark)
                self._rings[cpu] = ring
                self._order.append(ring)
                self._map[cpu] = ring.fd.fileno()
                ring.enable()
                self._epoll.register(ring.fd.fileno(), select.EPOLLIN)
        except BaseException:
            self.close()
            raise

    @property
    def map(self) -> Map:
        return self._map

    @property
    def cpus(self) -> list[int]:
        return [r.cpu for r in self._order]

    @property
    def lost(self) -> int:
        """Samples the kernel reported dropped (``PERF_RECORD_LOST``), all CPUs together."""
        return sum(r.lost for r in self._order)

    def lost_per_cpu(self) -> dict[int, int]:
        return {r.cpu: r.lost for r in self._order}

    def _free(self) -> None:
        for cpu, ring in self._rings.items():
            with contextlib.suppress(Exception):
                self._map.delete(cpu)
            with contextlib.suppress(Exception):
                self._epoll.unregister(ring.fd.fileno())
            ring.close()
        if self._owned:
            self._map.close()

    def __repr__(self) -> str:
        return f"<PerfBuffer cpus={self.cpus}{' closed' if self._closed else ''}>"

    def available(self) -> int:
        """Bytes waiting in all CPU rings."""
        return sum(r.available for r in self._order)

    def poll(self, timeout: float | None = None) -> bool:
        """Wait until some ring has data (True) or ``timeout`` passes (False; None waits for
        ever). Raises :class:`PerfBufferClosed` once the reader is closed."""
        self._enter()
        try:
            return self._poll(timeout)
        finally:
            self._exit()

    def _poll(self, timeout: float | None) -> bool:
        # Perf fds signal once per wakeup, not while data is pending: look first.
        if any(r.head[0] != r.tail[0] for r in self._order):
            return True
        return self._wait(timeout) or any(r.head[0] != r.tail[0] for r in self._order)

    def read(self, timeout: float | None = 0.0) -> Iterator[tuple[int, bytes]]:
        """Iterate over (cpu, raw sample bytes) for everything waiting; waits up to
        ``timeout`` (None: for ever) only when nothing is. A sample's space in the ring goes
        back to the kernel once the iterator has moved past it."""
        return itertools.chain.from_iterable(self._read_runs(timeout))

    def _read_runs(self, timeout: float | None) -> Iterator[Iterator[Any]]:
        self._enter()
        try:
            yield from self._read_runs_entered(timeout)
        finally:
            self._exit()

    def _read_runs_entered(self, timeout: float | None) -> Iterator[Iterator[Any]]:
        waited = False
        delivered = False
        while True:
            if self._closed:
                raise PerfBufferClosed("perf buffer reader is closed")
            got = False
            for r in self._order:
                before = r.tail[0]
                tag = itertools.repeat(r.cpu)
                runs = r.run_iters()
                try:
                    for run in runs:
                        yield zip(tag, run, strict=False)
                finally:
                    runs.close()
                if r.tail[0] != before:
                    got = True
            if got:
                delivered = True
                continue
            if delivered or waited or timeout == 0.0:
                return
            if not self._poll(timeout):
                return
            waited = True

    def read_batch(self, dtype: Any, *, timeout: float | None = 0.0,
                   max_records: int | None = None) -> Any:
        """All waiting samples as one numpy structured array (the first ``dtype.itemsize``
        bytes of each sample), with no Python call per sample. CPU order is not kept across
        CPUs (each CPU's samples stay in order). ``max_records`` defaults to about 16 MiB
        worth per call; call again for more."""
        self._enter()
        try:
            return self._read_batch(dtype, timeout, max_records)
        finally:
            self._exit()

    def _read_batch(self, dtype: Any, timeout: float | None, max_records: int | None) -> Any:
        np = importlib.import_module("numpy")
        dt = np.dtype(dtype)
        item = dt.itemsize
        avail = self.available()
        if not avail and timeout != 0.0 and self._poll(timeout):
            avail = self.available()
        if max_records is None:
            # Arrays of at most ~16 MiB: glibc serves them from memory it keeps (bigger ones
            # are fresh mmaps, whose page faults would cost more than the copy itself).
            max_records = max(1, _BATCH_BYTES // max(item, 1))
        # At most one sample per smallest record that can hold ``item`` bytes of raw data
        # (header, size word, 8-byte alignment): one array, filled in place, no concatenate.
        cap = min(max_records, avail // ((12 + item + 7) & ~7))
        out = np.empty(cap, dt)
        if not avail:
            return out
        vout = out.view(_void_dtype(item))
        pos = 0
        for r in self._order:
            pos = r.batch(np, vout, pos)
            if pos >= cap > 0:
                break
        if pos == cap:
            return out
        # Fewer samples than the room made for them (LOST records, bigger samples): do not
        # keep a mostly empty buffer alive behind the result.
        return out[:pos] if 2 * pos >= cap else out[:pos].copy()

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        """Block for ever yielding (cpu, sample); ends when the reader is closed."""
        try:
            while True:
                yield from self.read(None)
        except PerfBufferClosed:
            return
