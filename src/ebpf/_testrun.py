"""A reusable ``BPF_PROG_TEST_RUN``: one attr and one pair of buffers kept for many runs.

Modelled on reusing one cilium/ebpf ``RunOptions``: everything a run needs is built once, so
a run is a copy of the packet into a preallocated buffer, one attr word written, the syscall
and the output read back (no ctypes struct built, nothing validated again).
:meth:`ebpf.Program.test_run` keeps one runner per program for its packet-in, packet-out case.
"""

from __future__ import annotations

import ctypes
import errno as _errno
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, final

from . import errors
from ._sys import attrs as _attrs
from ._sys import syscall as _sc
from ._uapi import _arch
from ._uapi import _generated_types as _t

if TYPE_CHECKING:
    from ._programs import Program, TestRunResult
    from ._sys.fd import FD

__all__ = ["HEADROOM", "OneShot", "TestRunner", "oneshot_core"]

Data = bytes | bytearray | memoryview
Ctx = bytes | bytearray | memoryview | ctypes.Structure

#: Room past the input in the default output buffer, for programs that grow the packet
#: (``bpf_xdp_adjust_head``, ``bpf_skb_change_tail``); a larger output grows it on ENOSPC.
HEADROOM = 256
#: The largest buffer grown to on ENOSPC (the kernel's size is far smaller for real packets).
_GROW_MAX = 1 << 28

_A = _t.ProgTestRunAttr
_NR_BPF = _arch.NR_BPF
_CMD = int(_t.bpf_cmd.BPF_PROG_TEST_RUN)
_CMD_NAME = "BPF_PROG_TEST_RUN"
_SIZE = ctypes.sizeof(_A)
# The attr is read and written through a u32 view in the hot path (cheaper than ctypes
# fields), at offsets taken from the generated struct.
_W_RETVAL = _A.retval.offset // 4
_W_SIZE_OUT = _A.data_size_out.offset // 4
_W_DURATION = _A.duration.offset // 4
if (_W_RETVAL, _W_SIZE_OUT, _W_DURATION) != (1, 3, 9):  # the literal indexes in _closures
    raise ImportError(f"unexpected bpf_attr test layout {_W_RETVAL, _W_SIZE_OUT, _W_DURATION}")
_new_tuple = tuple.__new__
# What the hot closures use and never rebind are module globals rather than cells: a closure's
# cells are copied into (and cleared from) the frame on every call.
_EVERY = slice(None)
_fast_syscall = _sc.fast_syscall  # keeps the GIL: close() cannot run during the call
_fast_errno = _sc.fast_errno


def _address(buf: bytearray) -> int:
    """Address of a non-empty bytearray's storage (stable while a memoryview of it exists)."""
    return ctypes.addressof(ctypes.c_char.from_buffer(buf))


def _as_bytes(data: Any, what: str) -> memoryview:
    """``data`` as a flat byte view; a clear error for what is not bytes-like."""
    if isinstance(data, str):
        raise TypeError(f"{what} must be bytes-like, got str (encode it first)")
    if isinstance(data, ctypes.Structure | ctypes.Array):
        return memoryview(bytes(data))
    try:
        mv = memoryview(data)
    except TypeError:
        raise TypeError(f"{what} must be bytes-like, got {type(data).__name__}") from None
    if mv.format == "B" and mv.ndim == 1:
        return mv
    if mv.c_contiguous:
        try:
            return mv.cast("B")
        except (TypeError, ValueError):  # a format cast() does not take ("<I", "T{...}")
            pass
    return memoryview(mv.tobytes())


class _Core:
    """A runner's attr, buffers and slow paths; it holds no reference to the hot closures,
    so a runner makes no reference cycle (its program's fd is freed by refcount alone)."""

    __slots__ = ("args", "attr", "cin", "cout", "din", "din_buf", "dout", "dout_addr", "fd",
                 "no_ctx_out", "out_fixed", "out_n", "repeat", "type", "w")

    def __init__(self, prog: Program, hint: int, data_out_size: int | None,
                 attr: _t.ProgTestRunAttr, repeat: int) -> None:
        from ._programs import _NO_CTX_OUT

        owner: FD = prog.fd
        self.attr = attr
        self.w = memoryview(attr).cast("B").cast("I")
        self.fd = owner
        self.type = prog.type
        self.no_ctx_out = prog.type in _NO_CTX_OUT
        self.repeat = repeat
        self.out_fixed = data_out_size
        self.din_buf = bytearray(0)
        self.din: memoryview | None = None
        self.dout = memoryview(bytearray(0))
        self.dout_addr = 0
        self.out_n = 0
        self.cin: memoryview | None = None
        self.cout: memoryview | None = None
        # The syscall's arguments as one tuple with a byref() made once: ctypes takes the
        # tuple as it is (separate arguments would be packed into a new one) and the byref as
        # it is (a c_void_p would be converted into a new argument object on every call).
        self.args = (_NR_BPF, _CMD, ctypes.byref(attr), _SIZE)
        attr.prog_fd = owner.fileno()
        # The GIL-holding run reads prog_fd from this attr: close() sets it to -1 first, so
        # such a run sees the live fd or EBADF, never a reused number.
        owner.bind(attr, "prog_fd")
        self.set_input(hint)

    # --- configuration ----------------------------------------------------------------------
    def set_input(self, n: int) -> None:
        """Point the attr at an input buffer of ``n`` bytes and make sure the output fits."""
        attr = self.attr
        buf = self.din_buf
        if n > len(buf):
            buf = bytearray(n)
        din = memoryview(buf)[:n]
        addr = _address(buf) if n else 0
        # No calls from here on (see set_output): the attr never names a freed buffer.
        self.din_buf = buf
        self.din = din
        attr.data_in = addr
        attr.data_size_in = n
        if self.out_fixed is not None:
            self.set_output(self.out_fixed)
        else:
            self.set_output(max(n + HEADROOM, self.out_n))

    def set_output(self, n: int) -> None:
        """An output buffer of ``n`` bytes (the current one when it has that size)."""
        attr = self.attr
        if n != self.out_n or not self.dout_addr:
            out = bytearray(n)
            view = memoryview(out)
            # data_size_out 0 with a buffer lets the kernel copy any size: no buffer then.
            addr = _address(out) if n else 0
            # The swap makes no call (attribute and ctypes field stores only): no signal
            # handler or other thread runs in its middle, so the attr never names a freed
            # buffer, nor a size past the buffer it names.
            attr.data_out = addr
            self.dout = view
            self.out_n = n
            self.dout_addr = addr
        attr.data_out = self.dout_addr
        attr.data_size_out = n

    def set_no_data(self) -> None:
        attr = self.attr
        self.din = None
        attr.data_in = attr.data_out = 0
        attr.data_size_in = attr.data_size_out = 0

    def set_ctx(self, ctx: Ctx | None, ctx_out_size: int | None) -> None:
        """Copy ``ctx`` into the ctx_in buffer; size the ctx_out buffer (by default as the
        input, none for program types that write their context back into ctx_in)."""
        attr = self.attr
        if ctx is not None:
            raw = _as_bytes(ctx, "ctx")
            n = len(raw)
            cin = self.cin
            if cin is None or len(cin) != n:
                buf = bytearray(n)
                cin = memoryview(buf)
                addr = _address(buf) if n else 0
                self.cin = cin  # no call between the two stores (see set_output)
                attr.ctx_in = addr
            cin[:] = raw
            attr.ctx_size_in = n
        if ctx_out_size is None:
            if self.cout is not None or self.no_ctx_out:
                return  # keep the buffer sized earlier (or grown on ENOSPC)
            ctx_out_size = len(self.cin) if self.cin is not None else 0
        if ctx_out_size:
            buf = bytearray(ctx_out_size)
            cout = memoryview(buf)
            addr = _address(buf)
            self.cout = cout  # no call between the two stores (see set_output)
            attr.ctx_out = addr
        else:
            self.cout = None
            attr.ctx_out = 0
        attr.ctx_size_out = ctx_out_size

    # --- slow paths -------------------------------------------------------------------------
    def slow(self, data: Data | None, ctx: Ctx | None) -> TestRunResult:
        """A run that first fits the attr and buffers to this input (size, kind, ctx)."""
        if ctx is not None:
            self.set_ctx(ctx, None)
        if data is None:
            if self.din is not None:
                self.set_no_data()
        else:
            mv = _as_bytes(data, "data")
            n = len(mv)
            din = self.din
            if din is None or len(din) != n:
                self.set_input(n)
                din = self.din
            if n:
                din[:] = mv  # type: ignore[index]
        self.call()
        return self.result()

    def retry(self, err: int) -> TestRunResult:
        """After a GIL-holding run failed with ``err``: run again with the GIL released (after
        growing to the sizes an ENOSPC reported), so that what is raised comes from a call
        whose errno ctypes keeps (``use_errno``), and a transient EINTR is retried."""
        if self.fd.closed:
            raise ValueError("test run on a closed program")
        if err == _errno.ENOSPC:
            self.grow()
        self.call()
        return self.result()

    def call(self) -> None:
        """The syscall with the GIL released (fd held open), growing a too small output
        buffer on ENOSPC and retrying; the attr's sizes then describe the output.

        A retry runs the program again (its map updates happen twice): the kernel reports
        the size only after the run."""
        attr = self.attr
        owner = self.fd
        if owner.closed:
            raise ValueError("test run on a closed program")
        while True:
            if self.din is not None:
                attr.data_size_out = self.out_n
            if self.cout is not None:
                attr.ctx_size_out = len(self.cout)
            owner.acquire()
            try:
                _sc.bpf(_CMD, attr, _SIZE)
                return
            except errors.SyscallError as e:
                if e.errno != _errno.ENOSPC:
                    raise
                if self.grow():
                    continue
                raise self.enospc() from None
            finally:
                owner.release()

    def enospc(self) -> errors.SyscallError:
        attr = self.attr
        return errors.from_errno(_CMD_NAME, _errno.ENOSPC, hint=(
            f"the output is {attr.data_size_out} bytes of data and {attr.ctx_size_out} of "
            f"ctx; the buffers hold {self.out_n} and "
            f"{len(self.cout) if self.cout is not None else 0} (data_out_size/ctx_out_size "
            "fix them)"))

    def grow(self) -> bool:
        """Grow whichever output buffer the kernel found too small; False if none was."""
        attr = self.attr
        grown = False
        need = attr.data_size_out
        if self.din is not None and need > self.out_n and self.out_fixed is None:
            if need > _GROW_MAX:
                return False
            self.set_output(need)
            grown = True
        need = attr.ctx_size_out
        if self.cout is not None and need > len(self.cout):
            if need > _GROW_MAX:
                return False
            self.set_ctx(None, need)
            grown = True
        return grown

    def releases_gil(self) -> bool:
        """Whether a call releases the GIL: more than one run, or flags (live frames...)."""
        return self.repeat > 1 or bool(self.attr.flags)

    def ctx_bytes(self) -> bytes | None:
        cout = self.cout
        if cout is not None:
            return cout[: self.attr.ctx_size_out].tobytes()
        if self.cin is not None:  # syscall programs write their context back into ctx_in
            return self.cin.tobytes()
        return None

    def oneshot(self) -> OneShot:
        """The state :meth:`ebpf.Program.test_run` runs from, for this core as it is now:
        ``(repeat, din, w, args, out_n, n, same_len, dout, core)``. ``repeat`` is -1 when a
        call releases the GIL (those take the slow path) or the core has no input buffer."""
        din = self.din
        n = -1 if din is None else len(din)
        dout = self.dout
        rep = -1 if n < 0 or self.releases_gil() else self.repeat
        return (rep, din, self.w, self.args, self.out_n, n, (dout[:n] if n >= 0 else dout).tobytes,
                dout, self)

    def set_repeat(self, value: int) -> None:
        self.repeat = _attrs.check(self.attr, "repeat", value)

    def result(self) -> TestRunResult:
        from ._programs import TestRunResult

        attr = self.attr
        data = None if self.din is None else self.dout[: attr.data_size_out].tobytes()
        return TestRunResult(attr.retval, attr.duration, data, self.ctx_bytes())


#: What :meth:`ebpf.Program.test_run` keeps of its runner (see :meth:`_Core.oneshot`).
OneShot = tuple[int, "memoryview | None", memoryview, tuple[Any, ...], int, int,
                Callable[[], bytes], memoryview, _Core]


def oneshot_core(prog: Program, repeat: int, hint: int) -> _Core:
    """The runner core :meth:`ebpf.Program.test_run` keeps for its packet-in, packet-out
    runs (no ctx, default output size, no flags)."""
    attr = _A()
    _attrs.fill(attr, repeat=repeat)
    return _Core(prog, hint, None, attr, int(repeat))


def _closures(core: _Core) -> tuple[Callable[..., tuple[int, bytes | None]],
                                   Callable[..., TestRunResult]]:
    """``run``/``run_result`` for ``core``: the hot path reads cells only (no attribute
    lookups); the slow paths refresh the cells after they change the buffers."""
    from ._programs import TestRunResult

    w = core.w
    din: Any = None  # None (no data) fails the slice assignment: the slow path then
    dout = core.dout
    out_n = 0
    # The output as long as the input (a program that leaves the packet's length alone) is
    # copied out of a view made beforehand, not of a new slice.
    n = -1
    same_len = dout.tobytes
    with_ctx = False
    ctx_bytes = core.ctx_bytes
    new = _new_tuple
    res_type = TestRunResult

    def sync() -> None:
        nonlocal din, dout, out_n, n, same_len, with_ctx
        din, dout, out_n = core.din, core.dout, core.out_n
        n = -1 if din is None else len(din)
        same_len = (dout[:n] if n >= 0 else dout).tobytes  # bound: no method lookup per run
        with_ctx = core.cin is not None or core.cout is not None

    sync()

    def slow(data: Data | None, ctx: Ctx | None = None) -> TestRunResult:
        try:
            return core.slow(data, ctx)
        finally:
            sync()

    def retry(err: int) -> TestRunResult:
        try:
            return core.retry(err)
        finally:
            sync()

    if core.releases_gil():
        # Long runs (or flags such as live frames) release the GIL and hold the fd open
        # (FD.acquire) instead; the kernel's time dominates, so they take the plain path.
        def run_long(data: Data | None) -> tuple[int, bytes | None]:
            r = slow(data, None)
            return r[0], r[2]

        return run_long, slow

    args = core.args

    # BPF_PROG_TEST_RUN returns 0 or -1: a true result is the failure. The attr words are
    # w[1] retval, w[3] data_size_out, w[9] duration (checked at import).
    def run(data: Data | None) -> tuple[int, bytes | None]:
        try:
            din[_EVERY] = data
        except (TypeError, ValueError):  # another size or kind of input, or none
            r = slow(data, None)
            return r[0], r[2]
        w[3] = out_n
        if _fast_syscall(*args):
            r = retry(_fast_errno())
            return r[0], r[2]
        k = w[3]
        return w[1], same_len() if k == n else dout[:k].tobytes()

    def run_result(data: Data | None, ctx: Ctx | None = None) -> TestRunResult:
        if ctx is None:
            try:
                din[_EVERY] = data
            except (TypeError, ValueError):
                return slow(data, None)
            w[3] = out_n
            if _fast_syscall(*args):
                return retry(_fast_errno())
            k = w[3]
            return new(res_type, (w[1], w[9],
                                  same_len() if k == n else dout[:k].tobytes(),
                                  ctx_bytes() if with_ctx else None))
        return slow(data, ctx)

    return run, run_result


@final
class TestRunner:
    """Runs one program with ``BPF_PROG_TEST_RUN`` again and again (>= 4.12), reusing one attr,
    one input buffer and one output buffer. Build it with :meth:`ebpf.Program.test_runner`.

    ``run(data)`` returns ``(retval, data_out)``; ``run_result(data, ctx=None)`` a
    :class:`~ebpf.TestRunResult` (with the duration and the ctx written back). A ``ctx``
    given to ``run_result`` replaces the runner's context for that run and the ones after it.
    ``data_size_hint`` sizes the input buffer (another length works too, at the cost of one
    reconfiguration); the output buffer holds the input plus :data:`HEADROOM` bytes and grows
    when the kernel reports a larger packet (``ENOSPC``), unless ``data_out_size`` fixes it.
    ``data=None`` runs context-only programs (raw tracepoint, syscall).

    A run of ``repeat`` <= 1 without ``flags`` holds the GIL through the syscall (a single
    program run returns at once); longer runs release it. A runner is not thread-safe: give
    each thread its own. ``run`` and ``run_result`` may be kept as plain functions.
    """

    __test__ = False  # named Test*, not a pytest class
    __slots__ = ("_core", "run", "run_result")

    run: Callable[..., tuple[int, bytes | None]]
    run_result: Callable[..., TestRunResult]

    def __init__(
        self,
        prog: Program,
        *,
        data_size_hint: int = 64,
        data_out_size: int | None = None,
        ctx: Ctx | None = None,
        ctx_out_size: int | None = None,
        repeat: int = 0,
        flags: int = 0,
        cpu: int = 0,
        batch_size: int = 0,
    ) -> None:
        from ._programs import Program

        if not isinstance(prog, Program):
            raise TypeError(f"TestRunner needs a Program, got {type(prog).__name__}")
        if prog.closed:
            raise ValueError("test runner for a closed program")
        attr = _A()
        _attrs.fill(attr, repeat=repeat, flags=flags, cpu=cpu, batch_size=batch_size)
        hint = _attrs.check_int("data_size_hint", data_size_hint, 0, 0xFFFFFFFF, "u32")
        if data_out_size is not None:
            data_out_size = _attrs.check_int("data_out_size", data_out_size, 0, 0xFFFFFFFF,
                                             "u32")
        if ctx_out_size is not None:
            ctx_out_size = _attrs.check_int("ctx_out_size", ctx_out_size, 0, 0xFFFFFFFF, "u32")
        core = self._core = _Core(prog, hint, data_out_size, attr, int(repeat))
        if ctx is not None or ctx_out_size is not None:
            core.set_ctx(ctx, ctx_out_size)
        self.run, self.run_result = _closures(core)

    def __repr__(self) -> str:
        core = self._core
        state = "closed" if core.fd.closed else f"fd={core.fd.fileno()}"
        n = "none" if core.din is None else len(core.din)
        t = getattr(core.type, "name", core.type)
        return f"<TestRunner {t} {state} data_in={n} repeat={core.repeat}>"

    @property
    def repeat(self) -> int:
        """Runs per call (0 and 1 both run once); the kernel reports the average duration."""
        return self._core.repeat

    @repeat.setter
    def repeat(self, value: int) -> None:
        core = self._core
        before = core.releases_gil()
        core.repeat = _attrs.check(core.attr, "repeat", value)
        if core.releases_gil() != before:  # the other kind of call: other closures
            self.run, self.run_result = _closures(core)

    @property
    def duration_ns(self) -> int:
        """The kernel's average run time in the last call, in ns."""
        return int(self._core.attr.duration)

    @property
    def ctx_out(self) -> bytes | None:
        """The context the last call wrote back (``None`` when the runner has no ctx)."""
        return self._core.ctx_bytes()
