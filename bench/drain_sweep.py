"""Ring buffer drain throughput by record size (16 B to 4 KiB): ours, bcc and C.

Producer: an XDP program that reserves a record of the size under test, writes its first 8
bytes and submits it (``BPF_RB_NO_WAKEUP``), run under ``BPF_PROG_TEST_RUN`` with
``repeat=FILL`` - up to a million records per fill, sized so that the ring never drops any.
Only the drain is timed; each consumer drains the same fills (interleaved, repeated).

Consumers:
- ours ``read_batch(dtype)``: ``ebpf.RingBuffer.read_batch(dtype=np.dtype((np.void, size)))``
  (numpy array copy, no Python per record) - the issue 4 batch API;
- ours ``view_batch(dtype)``: zero-copy numpy view of the ring (plot and JSON only);
- ours ``read_batch()``: a ``RecordBatch`` (one bytes copy plus offsets/lengths);
- ours ``read()``: a memoryview per record, the issue 4 per-record iteration;
- floor ``python``: a bare Python loop over the mmap'd ring (header, slice, advance), consumer
  position published once per drain - what the reader does minus everything else;
- floor ``C``: libbpf ``ring_buffer__consume()`` with a counting callback (bench/drain_ringbuf.c);
- peer ``bcc``: ``open_ring_buffer(cb)`` + ``ring_buffer_consume()`` with a counting callback
  (bcc's best case: it calls a Python function per record through ctypes).

C and ``view_batch`` only count the records (no payload is read or copied), so their MB/s
grows with the record size; the copying consumers are bound by memory bandwidth.

Targets (issue 4) at 64-byte records: batch >= 30M records/s, per-record >= 2.5M/s.
The plot (``ringbuf_drain.png`` in the out dir) shows records/s and MB/s per size.
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from pathlib import Path
from typing import Any

import common

BENCH = "drain"
SIZES = (16, 64, 256, 1024, 4096)
MAX_RING = 64 << 20
UNIT = "M records/s"

_BCC_SCRIPT = r"""
import ctypes, os, sys, time
from bcc import BPF

size, fill, ring_bytes, repeats = map(int, sys.argv[1:5])
pages = ring_bytes // os.sysconf("SC_PAGE_SIZE")
b = BPF(text='''
BPF_RINGBUF_OUTPUT(events, %d);
struct ev { char d[%d]; };
int produce(struct xdp_md *ctx) {
    struct ev *e = events.ringbuf_reserve(sizeof(struct ev));
    if (!e)
        return XDP_PASS;
    *(u64 *)e->d = 1;
    events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    return XDP_PASS;
}
''' % (pages, size))
fn = b.load_func("produce", BPF.XDP)
count = [0]

def on_record(ctx, data, sz):
    count[0] += 1

b["events"].open_ring_buffer(on_record)

class TestRun(ctypes.Structure):
    _fields_ = [("prog_fd", ctypes.c_uint32), ("retval", ctypes.c_uint32),
                ("data_size_in", ctypes.c_uint32), ("data_size_out", ctypes.c_uint32),
                ("data_in", ctypes.c_uint64), ("data_out", ctypes.c_uint64),
                ("repeat", ctypes.c_uint32), ("duration", ctypes.c_uint32),
                ("pad", ctypes.c_uint8 * 48)]

libc = ctypes.CDLL(None, use_errno=True)
pkt = ctypes.create_string_buffer(64)
rates = []
for _ in range(repeats + 1):
    attr = TestRun(prog_fd=fn.fd, data_size_in=64, data_in=ctypes.addressof(pkt), repeat=fill)
    if libc.syscall(321, 10, ctypes.byref(attr), ctypes.sizeof(attr)) < 0:
        raise OSError(ctypes.get_errno(), "BPF_PROG_TEST_RUN")
    count[0] = 0
    t0 = time.perf_counter()
    b.ring_buffer_consume()
    dt = time.perf_counter() - t0
    rates.append(count[0] / dt / 1e6)
emit_result({"rates": rates[1:], "count": count[0]})
"""


def _plan(size: int, target: int) -> tuple[int, int]:
    """(records per fill, ring bytes) for a record size: all fit, ring a power of two."""
    rec = (size + 8 + 7) & ~7
    need = target * rec + 4096
    ring = 1 << max(16, (need - 1).bit_length())
    ring = min(ring, MAX_RING)
    fill = min(target, (ring - 4096) // rec)
    return fill, ring


class _Bare:
    """The floor: a bare Python loop over the mmap'd ring (x86-64 ordering assumed)."""

    def __init__(self, fd: int, ring_bytes: int) -> None:
        page = mmap.PAGESIZE
        self.cons_mm = mmap.mmap(fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.prod_mm = mmap.mmap(fd, page + 2 * ring_bytes, mmap.MAP_SHARED, mmap.PROT_READ,
                                 offset=page)
        pv = memoryview(self.prod_mm)
        self.cons = memoryview(self.cons_mm)[:8].cast("Q")
        self.prod = pv[:8].cast("Q")
        self.data = pv[page:]
        self.mask = ring_bytes - 1
        self.views = [self.cons, self.prod, self.data, pv]

    def drain(self) -> int:
        cons, data, mask = self.cons, self.data, self.mask
        unpack = struct.Struct("=I").unpack_from
        c = cons[0]
        p = self.prod[0]
        n = 0
        while c < p:
            off = c & mask
            (hdr,) = unpack(data, off)
            if hdr & 0x80000000:  # BUSY
                break
            ln = hdr & 0x3FFFFFFF
            if not hdr & 0x40000000:  # DISCARD
                rec = data[off + 8 : off + 8 + ln]
                n += 1
                del rec
            c += (ln + 15) & ~7
        cons[0] = c
        return n

    def close(self) -> None:
        for v in reversed(self.views):
            v.release()
        self.cons_mm.close()
        self.prod_mm.close()


def _ours(size: int, fill: int, ring_bytes: int, repeats: int) -> dict[str, Any]:
    """Rates (M records/s) per consumer; a string where ours cannot run."""
    import ebpf
    from ebpf import asm
    from ebpf._sys.syscall import bpf_fd
    from ebpf._uapi import _generated_types as t
    from ebpf.asm import R0, R1, R2, R3, Helper

    create = t.MapCreateAttr(map_type=int(ebpf.MapType.RINGBUF), max_entries=ring_bytes)
    fd = bpf_fd(int(t.bpf_cmd.BPF_MAP_CREATE), create, what="map")
    out: dict[str, Any] = {}
    closers: list[Any] = [fd]
    try:
        prog = ebpf.Program.load(ebpf.ProgramType.XDP, [
            asm.load_map(R1, fd.fileno()),
            asm.mov(R2, size),
            asm.mov(R3, 0),
            asm.call(Helper.RINGBUF_RESERVE),
            asm.jeq(R0, 0, "out"),
            asm.store_imm(asm.DW, R0, 0, 1),
            asm.mov(R1, R0),
            asm.mov(R2, 1),  # BPF_RB_NO_WAKEUP
            asm.call(Helper.RINGBUF_SUBMIT),
            asm.label("out"),
            asm.mov(R0, 2),
            asm.exit(),
        ])
        closers.append(prog)
        packet = bytes(64)

        def produce() -> None:
            prog.test_run(packet, repeat=fill)

        bare = _Bare(fd.fileno(), ring_bytes)
        closers.append(bare)
        consumers: dict[str, Any] = {"python": bare.drain}
        try:
            import numpy as np

            from ebpf.ringbuf import RingBuffer
        except ImportError as e:
            for k in ("batch", "view", "batch_mv", "read"):
                out[k] = f"unavailable: {e}"
        else:
            rb = RingBuffer(fd.fileno())
            closers.append(rb)
            dt = np.dtype((np.void, size))

            def batch() -> int:
                n = 0
                while True:
                    a = rb.read_batch(dt)
                    if not len(a):
                        return n
                    n += len(a)

            def batch_mv() -> int:
                n = 0
                while True:
                    lst = rb.read_batch()
                    if not lst:
                        return n
                    n += len(lst)

            def per_record() -> int:
                n = 0
                for _rec in rb.read():
                    n += 1
                return n

            def view() -> int:
                n = 0
                while True:
                    with rb.view_batch(dt) as a:
                        k = len(a)
                    if not k:
                        return n
                    n += k

            consumers = {"batch": batch, "view": view, "batch_mv": batch_mv,
                         "read": per_record, **consumers}
        samples: dict[str, list[float]] = {k: [] for k in consumers}
        for i in range(repeats + 1):  # the first round warms the mappings up
            for name, drain in list(consumers.items()):
                produce()
                try:
                    t0 = time.perf_counter()
                    n = drain()
                    dt_s = time.perf_counter() - t0
                    if n != fill:
                        raise RuntimeError(f"drained {n} of {fill} records")
                except Exception as e:  # one consumer failing leaves the others measured
                    out[name] = f"failed: {type(e).__name__}: {e}"
                    del consumers[name], samples[name]
                    bare.drain()  # empty the ring for the next consumer
                    continue
                if i:
                    samples[name].append(n / dt_s / 1e6)
        out.update(samples)
        return out
    finally:
        for c in reversed(closers):
            c.close()


def _c(size: int, fill: int, ring_bytes: int, repeats: int) -> list[float] | str:
    try:
        res = common.run_c("drain_ringbuf", size, fill, ring_bytes, repeats + 1)
    except common.Unavailable as e:
        return str(e)
    return [r / 1e6 for r in res.get("rate", [])[1:]]


def _bcc(size: int, fill: int, ring_bytes: int, repeats: int) -> list[float] | str:
    try:
        res = common.run_bcc(_BCC_SCRIPT, size, fill, ring_bytes, repeats, timeout=300)
    except common.Unavailable as e:
        return str(e)
    if res.get("count") != fill:
        return f"bcc drained {res.get('count')} of {fill} records"
    return [float(x) for x in res["rates"]]


LABELS = {
    "batch": "ebpf read_batch(dtype)",
    "view": "ebpf view_batch(dtype), zero-copy",
    "batch_mv": "ebpf read_batch() RecordBatch",
    "read": "ebpf read() per record",
    "python": "bare Python mmap loop",
    "C": "C libbpf ring_buffer__consume",
    "bcc": "bcc ring_buffer_consume",
}


def run(quick: bool = False, out_dir: Path | None = None) -> list[dict[str, Any]]:
    target, repeats = (200_000, 2) if quick else (1_000_000, 3)
    results: dict[int, dict[str, Any]] = {}
    for size in SIZES:
        fill, ring = _plan(size, target)
        got = _ours(size, fill, ring, repeats)
        got["C"] = _c(size, fill, ring, repeats)
        got["bcc"] = _bcc(size, fill, ring, repeats)
        got["fill"] = fill
        results[size] = got

    rows: list[dict[str, Any]] = []
    sweep: dict[str, list[tuple[int, float]]] = {}
    for size, got in results.items():
        for key, label in LABELS.items():
            v = got.get(key)
            if isinstance(v, list) and v:
                sweep.setdefault(label, []).append((size, common.median(v)))
        for key, what in (("batch", "batch read_batch(dtype)"), ("read", "per-record read()")):
            spec: dict[str, Any] = {}
            if size == 64:
                spec = ({"target": ">= 30M/s (issue 4)", "target_spec": {"min": 30}}
                        if key == "batch" else
                        {"target": ">= 2.5M/s (issue 4)", "target_spec": {"min": 2.5}})
            floors: dict[str, Any] = {"C": got["C"]}
            if key == "read":
                floors = {"python": got["python"], **floors}
            rows.append(common.row(
                BENCH, f"ringbuf drain {size} B, {what}", UNIT, got.get(key),
                floors=floors, peers={"bcc": got["bcc"]},
                note=f"{got['fill']:,} records/fill", **spec,
            ))
    plot = None
    if out_dir is not None and sweep:
        plot = common.plot_sweep(
            Path(out_dir) / "ringbuf_drain.png", sweep,
            title=f"Ring buffer drain by record size ({os.cpu_count()} cores, "
                  f"Linux {common.platform.release()}); C and view_batch count records "
                  "without reading payloads",
            xlabel="record size (bytes)", ylabel="M records/s", bytes_per_x=True,
            y_unit=1e6)
    if rows:
        rows[0]["sweep"] = {k: [list(p) for p in v] for k, v in sweep.items()}
        if plot is not None:
            rows[0]["plot"] = str(plot)
    return rows


if __name__ == "__main__":
    common.standalone(run)

