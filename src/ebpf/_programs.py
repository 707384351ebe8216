"""Programs: load with a readable verifier error, run with BPF_PROG_TEST_RUN, introspect, pin."""

from __future__ import annotations

import ctypes
import errno as _errno
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, final

from . import errors
from ._sys import attrs as _attrs
from ._sys import commands
from ._sys.fd import FD, KernelObject, adopt
from ._sys.syscall import bpf, bpf_fd, fast_errno, fast_syscall
from ._types import AttachType, ProgramType
from ._uapi import _generated_types as _t

if TYPE_CHECKING:
    from typing_extensions import TypedDict, Unpack

    from ._testrun import Ctx, OneShot, TestRunner, _Core

    class _TestRunOptions(TypedDict, total=False):
        """The keywords of :meth:`Program.test_run` besides ``repeat``."""

        ctx: bytes | bytearray | ctypes.Structure | None
        data_out_size: int | None
        ctx_out_size: int | None
        flags: int
        cpu: int
        batch_size: int

__all__ = ["Program", "ProgramInfo", "TestRunResult"]

C = _t.bpf_cmd

#: First log buffer size when a load failed; doubled on ENOSPC up to LOG_SIZE_MAX.
LOG_SIZE_START = 64 * 1024
LOG_SIZE_MAX = 1 << 28  # kernels >= 5.2 accept up to UINT_MAX >> 2


class _Encodable(Protocol):
    def encode(self, *, maps: Mapping[str, Any] | None = ...) -> bytes: ...


class TestRunResult(NamedTuple):
    """Result of :meth:`Program.test_run`.

    ``duration_ns`` is the kernel's average per run; ``data``/``ctx`` are the output buffers
    (``None`` when no input was given for them).
    """

    retval: int
    duration_ns: int
    data: bytes | None
    ctx: bytes | None


TestRunResult.__test__ = False  # type: ignore[attr-defined]  # named Test*, not a pytest class

class ProgramInfo(NamedTuple):
    """What the kernel reports about a loaded program (``struct bpf_prog_info``).

    A named tuple rather than a dataclass: :mod:`dataclasses` (with the :mod:`inspect` it
    imports) would be 6 ms of every process that loads a program."""

    id: int
    type: ProgramType | int
    name: str
    tag: bytes
    xlated_prog_len: int
    jited_prog_len: int
    load_time: int
    created_by_uid: int
    map_ids: tuple[int, ...]
    btf_id: int
    run_time_ns: int
    run_cnt: int
    verified_insns: int
    gpl_compatible: bool


def _as_program_type(t: ProgramType | int) -> ProgramType | int:
    try:
        return ProgramType(t)
    except ValueError:
        return int(t)


def _kernel_kfuncs(names: Iterable[str]) -> dict[str, int]:
    """BTF ids of kernel functions called as kfuncs, looked up in vmlinux BTF."""
    from . import btf

    spec = btf.load_kernel()
    out: dict[str, int] = {}
    for name in names:
        try:
            out[name] = spec.find(name, kind=btf.Func).id
        except KeyError:
            raise errors.NotSupportedError(f"kfunc {name!r}", detail="not in kernel BTF") from None
    return out


def _encode_insns(insns: Any, maps: Mapping[Any, Any] | None,
                  kfuncs: Mapping[str, Any] | None = None) -> tuple[bytes, Any]:
    """Bytes of the program and the object that can map indices back to source (or None)."""
    if isinstance(insns, (bytes, bytearray, memoryview)):
        code = bytes(insns)
        src = None
    else:
        if hasattr(insns, "encode") and not isinstance(insns, str):
            prog = insns
        else:
            from . import asm

            if isinstance(insns, str):
                prog = asm.Instructions(asm.assemble(insns))
            elif isinstance(insns, Iterable):
                prog = asm.Instructions(list(insns))
            else:
                raise TypeError(f"cannot load instructions of type {type(insns).__name__}")
        refs = getattr(prog, "kfunc_references", ())
        wanted = [name for _, name in (refs() if callable(refs) else refs)]
        if wanted:
            resolved = _kernel_kfuncs(n for n in wanted if not kfuncs or n not in kfuncs)
            resolved.update(kfuncs or {})
            code = prog.encode(maps=maps, kfuncs=resolved)
        else:
            code = prog.encode(maps=maps)
        src = prog
    if not code or len(code) % 8:
        raise ValueError(f"program must be a non-empty multiple of 8 bytes, got {len(code)}")
    return code, src


@final
class Program(KernelObject):
    """A BPF program loaded into the kernel; holds its fd.

    Build one with :meth:`load`, :meth:`from_pin`, :meth:`from_id` or :meth:`from_fd`.
    """

    __slots__ = ("_fd", "_insns", "_oneshot", "_ran", "_runner", "_test_attr",
                 "expected_attach_type", "name", "type", "verifier_log")

    def __init__(self, fd: FD, prog_type: ProgramType | int, name: str = "",
                 insns: bytes | None = None,
                 expected_attach_type: AttachType | int | None = None) -> None:
        self._fd = fd
        self.type = _as_program_type(prog_type)
        self.name = name
        self._insns = insns
        self.expected_attach_type = expected_attach_type
        # test_run: the attr of its general path (None while a call has it), whether it ran
        # a packet once, the runner core of its packet-in, packet-out case from the second
        # such run on, and that core's state (None while a call has it).
        self._test_attr: _t.ProgTestRunAttr | None = None
        self._ran = False
        self._runner: _Core | None = None
        self._oneshot: OneShot | None = None
        #: The verifier's log of this load when ``log_level`` was given to :meth:`load`
        #: (level 2 adds per-instruction states, 4 the statistics); "" otherwise.
        self.verifier_log = ""

    # --- construction -------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        prog_type: ProgramType | int,
        insns: Any,
        *,
        license: str = "GPL",
        name: str = "",
        expected_attach_type: AttachType | int | None = None,
        attach_btf_id: int = 0,
        attach_to: str | None = None,
        attach_btf_obj_fd: int = 0,
        attach_prog_fd: int = 0,
        flags: int = 0,
        kern_version: int = 0,
        maps: Mapping[Any, Any] | None = None,
        kfuncs: Mapping[str, int] | None = None,
        prog_btf_fd: int = 0,
        func_info: bytes = b"",
        func_info_rec_size: int = 0,
        line_info: bytes = b"",
        line_info_rec_size: int = 0,
        fd_array: Iterable[int] = (),
        ifindex: int = 0,
        log_level: int = 0,
        log_size: int = LOG_SIZE_START,
    ) -> Program:
        """Load a program (``BPF_PROG_LOAD``) and return it.

        ``insns`` is bytes, an :class:`ebpf.asm.Instructions`, a list of instructions and
        labels, or assembler text. ``maps`` resolves map references kept by name; kfunc calls
        by name are resolved in vmlinux BTF unless ``kfuncs`` gives their ids.
        ``attach_to`` names the kernel function/type whose BTF id becomes ``attach_btf_id``
        (tracing, LSM, struct_ops, iterators; looked up in vmlinux BTF).

        Verifier log strategy: the load runs without a log first; on failure it is retried with
        a log (``log_level`` 1 unless given), whose buffer grows on ``ENOSPC`` and is sized from
        ``log_true_size`` when the kernel reports it (>= 6.4). A rejection raises
        :class:`~ebpf.errors.VerifierError` with the whole log and the failing instruction.
        """
        code, source = _encode_insns(insns, maps, kfuncs)
        if attach_to is not None and not attach_btf_id:
            attach_btf_id = _resolve_attach_btf_id(prog_type, expected_attach_type, attach_to)
        if not isinstance(license, str):
            raise errors.InvalidArgumentError(
                "license", f"expected a str such as 'GPL', got {type(license).__name__}")
        if "\0" in license:
            raise errors.InvalidArgumentError("license", "contains a NUL character")
        attr = _t.ProgLoadAttr()
        _attrs.fill(attr, prog_type=prog_type, kern_version=kern_version, prog_flags=flags,
                    prog_ifindex=ifindex, attach_btf_id=attach_btf_id)
        _attrs.check_int("log_level", log_level, 0, 0xFFFFFFFF, "u32")
        _attrs.check_int("log_size", log_size, 1, 0xFFFFFFFF, "u32")
        attr.prog_name = _attrs.object_name(name)
        lic = ctypes.create_string_buffer(license.encode() + b"\0")
        code_buf = ctypes.create_string_buffer(code, len(code))
        _attrs.check(attr, "insn_cnt", len(code) // 8)
        attr.insns = ctypes.addressof(code_buf)
        attr.license = ctypes.addressof(lic)
        if expected_attach_type is not None:
            _attrs.check(attr, "expected_attach_type", expected_attach_type)
        if attach_btf_obj_fd:
            _attrs.check(attr, "attach_btf_obj_fd", attach_btf_obj_fd)
        elif attach_prog_fd:
            _attrs.check(attr, "attach_prog_fd", attach_prog_fd)
        keep: list[Any] = [lic, code_buf]
        if not func_info and not prog_btf_fd and _may_take_func_address(code):
            from .btf import funcinfo  # callbacks need func_info: build it (closed with keep)

            auto = funcinfo.for_program(code, source)
            if auto is not None:
                keep.append(auto)
                prog_btf_fd, func_info, func_info_rec_size = auto.fd, auto.func_info, 8
        if prog_btf_fd:
            _attrs.check(attr, "prog_btf_fd", prog_btf_fd)
        if func_info:
            fi = ctypes.create_string_buffer(func_info, len(func_info))
            keep.append(fi)
            attr.func_info = ctypes.addressof(fi)
            _attrs.check(attr, "func_info_rec_size", func_info_rec_size)
            attr.func_info_cnt = _record_count("func_info", func_info, func_info_rec_size)
        if line_info:
            li = ctypes.create_string_buffer(line_info, len(line_info))
            keep.append(li)
            attr.line_info = ctypes.addressof(li)
            _attrs.check(attr, "line_info_rec_size", line_info_rec_size)
            attr.line_info_cnt = _record_count("line_info", line_info, line_info_rec_size)
        fds = list(fd_array)
        if fds:
            arr = _attrs.fd_array("fd_array", fds)
            keep.append(arr)
            attr.fd_array = ctypes.addressof(arr)
        fd: FD | None = None
        if not log_level:
            try:
                fd = bpf_fd(C.BPF_PROG_LOAD, attr, keep=keep, what="program")
            except errors.SyscallError as e:
                if e.errno in (_errno.E2BIG,):
                    raise
                first_error = e
            else:
                return cls(fd, prog_type, name, code, expected_attach_type)
        else:
            first_error = None
        fd, text = _load_with_log(attr, keep, max(log_level, 1), log_size, source, first_error)
        prog = cls(fd, prog_type, name, code, expected_attach_type)
        if log_level:
            prog.verifier_log = text.decode("utf-8", "replace")
        return prog

    @classmethod
    def from_fd(cls, fd: int | FD) -> Program:
        """Adopt an existing program fd (an int is duplicated, an :class:`FD` is taken over)."""
        owned = adopt(fd, "program")
        try:
            commands.expect_kind(owned.fileno(), "program", f"fd {owned.fileno()}")
            info = commands.obj_info(owned.fileno(), _t.BpfProgInfo())
        except BaseException:
            owned.close()
            raise
        name = bytes(info.name).split(b"\0", 1)[0].decode("utf-8", "replace")
        return cls(owned, info.type, name)

    @classmethod
    def from_pin(cls, path: str | os.PathLike[str]) -> Program:
        """Open a program pinned on a bpffs."""
        return cls.from_fd(commands.obj_get(path, what="program"))

    @classmethod
    def from_id(cls, prog_id: int) -> Program:
        """Open a loaded program by its kernel id."""
        return cls.from_fd(commands.fd_by_id(commands.ObjKind.PROG, prog_id, "program"))

    def __repr__(self) -> str:
        t = self.type.name if isinstance(self.type, ProgramType) else self.type
        state = "closed" if self.closed else f"fd={self._fd.fileno()}"
        return f"<Program {t} {self.name!r} {state}>"

    @property
    def instructions(self) -> bytes:
        """The bytecode as loaded (from the kernel's xlated dump when not loaded here)."""
        if self._insns is not None:
            return self._insns
        return self.xlated()

    def xlated(self) -> bytes:
        """The instructions as the kernel holds them after verification (``xlated_prog_insns``)."""
        info = commands.obj_info(self.fileno(), _t.BpfProgInfo())
        buf = ctypes.create_string_buffer(info.xlated_prog_len)
        info2 = _t.BpfProgInfo()
        info2.xlated_prog_len = info.xlated_prog_len
        info2.xlated_prog_insns = ctypes.addressof(buf)
        commands.obj_info(self.fileno(), info2)
        return buf.raw

    def info(self) -> ProgramInfo:
        """``BPF_OBJ_GET_INFO_BY_FD`` for this program."""
        info = commands.obj_info(self.fileno(), _t.BpfProgInfo())
        n = info.nr_map_ids
        ids: tuple[int, ...] = ()
        if n:
            arr = (ctypes.c_uint32 * n)()
            info2 = _t.BpfProgInfo()
            info2.nr_map_ids = n
            info2.map_ids = ctypes.addressof(arr)
            commands.obj_info(self.fileno(), info2)
            ids = tuple(arr)
        return ProgramInfo(
            id=info.id,
            type=_as_program_type(info.type),
            name=bytes(info.name).split(b"\0", 1)[0].decode("utf-8", "replace"),
            tag=bytes(info.tag),
            xlated_prog_len=info.xlated_prog_len,
            jited_prog_len=info.jited_prog_len,
            load_time=info.load_time,
            created_by_uid=info.created_by_uid,
            map_ids=ids,
            btf_id=info.btf_id,
            run_time_ns=info.run_time_ns,
            run_cnt=info.run_cnt,
            verified_insns=info.verified_insns,
            gpl_compatible=bool(info.gpl_compatible),
        )

    @property
    def id(self) -> int:
        return self.info().id

    @property
    def tag(self) -> bytes:
        return self.info().tag

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pin on a bpffs so the program outlives this process."""
        commands.obj_pin(self.fileno(), path)

    # --- test run -------------------------------------------------------------------------
    def test_run(self, data: bytes | bytearray | memoryview | None = None, *, repeat: int = 0,
                 **options: Unpack[_TestRunOptions]) -> TestRunResult:
        """Run the program in the kernel on ``data``/``ctx`` (``BPF_PROG_TEST_RUN``, >= 4.12).

        ``repeat`` 0 (the default) runs once; raw tracepoint and syscall programs accept only
        that. ``data_out_size`` defaults to ``len(data) + 256``, room for programs that grow
        the packet, and then grows to a larger output (the kernel's ``ENOSPC``; the program
        runs again).
        ``ctx`` may be a ctypes struct such as ``XdpMd``; the context written back by the
        kernel is returned as bytes in ``result.ctx``. Raw tracepoint and syscall programs take
        ``ctx`` only; syscall programs write their context back into the input (returned too).

        From the second packet-in, packet-out call on (no ``ctx``, sizes or flags) the program
        keeps a runner for them (see :meth:`test_runner`): one attr and one pair of buffers
        reused. Threads may share a program: a call that finds the runner in use by another
        thread runs with an attr and buffers of its own (as the first call does). For a hot
        loop, build a :class:`TestRunner` and call its ``run``.

        Keywords: ``ctx``, ``repeat``, ``data_out_size``, ``ctx_out_size``, ``flags``, ``cpu``,
        ``batch_size``.
        """
        # The packet case runs here, on the kept runner's state, without a further call (see
        # TestRunner.run for the words of the attr: w[1] retval, w[3] data_size_out, w[9]
        # duration). The other keywords come as a dict (empty in the packet case): keyword-only
        # parameters with defaults would cost one dict lookup each per call.
        # What this costs over TestRunner.run (about 2,500 user instructions, 7,600 vs 5,000
        # on CPython 3.11, callgrind): the NamedTuple result (~1,340: tuple.__new__ of a
        # subclass and its dealloc), the bound-method call with a keyword and **options
        # (~550), taking and putting back the state and reading the duration (~650).
        st = self._oneshot
        if st is not None and not options:
            # Take the runner: nothing between the read and this store can switch threads (no
            # call), so another thread meanwhile finds None and takes the general path.
            self._oneshot = None
            rep, din, w, args, out_n, n, same_len, dout, core = st
            if rep == repeat:
                try:
                    din[_EVERY] = data  # type: ignore[index,assignment]
                except (TypeError, ValueError):  # another size or kind of input, or none
                    return self._packet_run(core, data, repeat, 0)
                w[3] = out_n
                try:
                    if not _fast_syscall(*args):  # 0 or -1: a true result is the failure
                        k = w[3]
                        res: TestRunResult = _new_tuple(TestRunResult, (
                            w[1], w[9], same_len() if k == n else dout[:k].tobytes(), None))
                        self._oneshot = st
                        return res
                    err = _fast_errno()
                except BaseException:  # KeyboardInterrupt after the call: the state stands
                    self._oneshot = st
                    raise
                return self._packet_run(core, data, repeat, err)
            self._oneshot = st
        for name in options:
            if name not in _TEST_RUN_KEYWORDS:
                raise TypeError(f"Program.test_run() got an unexpected keyword argument {name!r}")
        return self._test_run(data, repeat=repeat, **options)

    def _packet_run(self, core: _Core, data: Any, repeat: int, err: int) -> TestRunResult:
        """The slow paths of :meth:`test_run`'s packet case, with the runner taken (its state
        None): another input size or kind, another ``repeat``, a run that failed with ``err``
        (run again with the GIL released, after growing on ENOSPC). Puts the state back."""
        try:
            if err:
                return core.retry(err)
            if data is None:  # not a packet run: the general path
                return self._test_run(None, repeat=repeat)
            if repeat != core.repeat:
                core.set_repeat(repeat)
            return core.slow(data, None)
        finally:
            self._oneshot = core.oneshot()

    def _test_run(
        self,
        data: bytes | bytearray | memoryview | None = None,
        *,
        ctx: bytes | bytearray | ctypes.Structure | None = None,
        repeat: int = 0,
        data_out_size: int | None = None,
        ctx_out_size: int | None = None,
        flags: int = 0,
        cpu: int = 0,
        batch_size: int = 0,
    ) -> TestRunResult:
        """:meth:`test_run` with every keyword (its signature, see ``test_run.__wrapped__``)."""
        if data is not None and ctx is None and data_out_size is None and not (
                flags or cpu or batch_size):
            if self._runner is not None:
                st = self._oneshot
                if st is not None:
                    self._oneshot = None  # taken (as in test_run)
                    # The state's own core: a core is used only by the thread that took its
                    # state (two threads making the first runner at once make two cores).
                    return self._packet_run(st[8], data, repeat, 0)
                # else: in use by another thread: this call runs with its own attr and buffers
            elif self._ran:  # the second packet run: from now on, the kept runner
                from ._testrun import oneshot_core

                core = oneshot_core(self, repeat,
                                    len(data) if isinstance(data, bytes | bytearray) else 64)
                self._runner = core
                return self._packet_run(core, data, repeat, 0)
            else:
                self._ran = True
        if not 0 <= repeat <= 0xFFFFFFFF:  # u32 in the attr
            _attrs.check_int("repeat", repeat, 0, 0xFFFFFFFF, "u32")
        # The attr kept for this path, taken for the call (a thread that finds it taken
        # makes its own).
        attr = self._test_attr
        self._test_attr = None
        if attr is None:
            attr = _t.ProgTestRunAttr()
        else:
            ctypes.memset(ctypes.addressof(attr), 0, ctypes.sizeof(attr))
        try:
            return self._test_run_with(attr, data, ctx, repeat, data_out_size, ctx_out_size,
                                       flags, cpu, batch_size)
        finally:
            self._test_attr = attr

    def _test_run_with(self, attr: _t.ProgTestRunAttr, data: Any, ctx: Any, repeat: int,
                       data_out_size: int | None, ctx_out_size: int | None, flags: int,
                       cpu: int, batch_size: int) -> TestRunResult:
        """One test run with ``attr`` (zeroed) and buffers made for it."""
        _attrs.fill(attr, repeat=repeat, flags=flags, cpu=cpu, batch_size=batch_size)
        dout: Any = None
        din: Any = None
        if data is not None:
            if isinstance(data, (str, int)):  # bytes(int) would be that many zero bytes
                raise TypeError(f"data must be bytes-like, got {type(data).__name__}")
            data = bytes(data)  # the bytes of any buffer, whatever its item format
            n = len(data)
            din = (ctypes.c_char * n).from_buffer_copy(data) if n else None
            out_n = n + 256 if data_out_size is None else data_out_size
            dout = ctypes.create_string_buffer(out_n) if out_n else None
            attr.data_size_in = n
            attr.data_in = ctypes.addressof(din) if din is not None else 0
            attr.data_size_out = out_n
            attr.data_out = ctypes.addressof(dout) if dout is not None else 0
        cin: Any = None
        cout: Any = None
        if ctx is not None:
            raw = bytes(ctx)
            cin = ctypes.create_string_buffer(raw, len(raw))
            attr.ctx_size_in = len(raw)
            attr.ctx_in = ctypes.addressof(cin)
            out_n = len(raw) if ctx_out_size is None else ctx_out_size
            if self.type in _NO_CTX_OUT and ctx_out_size is None:
                out_n = 0
            if out_n:
                cout = ctypes.create_string_buffer(out_n)
                attr.ctx_size_out = out_n
                attr.ctx_out = ctypes.addressof(cout)
        fd = self._fd.acquire()
        try:
            attr.prog_fd = fd
            try:
                bpf(C.BPF_PROG_TEST_RUN, attr, keep=(din, dout, cin, cout))
            except errors.SyscallError as e:
                need = attr.data_size_out
                if (e.errno != _errno.ENOSPC or data_out_size is not None or dout is None
                        or need <= len(dout)):
                    raise
                dout = ctypes.create_string_buffer(need)  # the size the kernel reported
                attr.data_out = ctypes.addressof(dout)
                if cout is not None:
                    attr.ctx_size_out = len(cout)
                bpf(C.BPF_PROG_TEST_RUN, attr, keep=(din, dout, cin, cout))
        finally:
            self._fd.release()
        data_res = dout.raw[: attr.data_size_out] if dout is not None else None
        if data is not None and dout is None:
            data_res = b""
        ctx_res: bytes | None = None
        if cout is not None:
            ctx_res = cout.raw[: attr.ctx_size_out]
        elif cin is not None:
            ctx_res = cin.raw
        return TestRunResult(attr.retval, attr.duration, data_res, ctx_res)

    test_run.__wrapped__ = _test_run  # type: ignore[attr-defined]  # inspect.signature, help()

    def test_runner(
        self,
        *,
        data_size_hint: int = 64,
        data_out_size: int | None = None,
        ctx: Ctx | None = None,
        ctx_out_size: int | None = None,
        repeat: int = 0,
        flags: int = 0,
        cpu: int = 0,
        batch_size: int = 0,
    ) -> TestRunner:
        """A :class:`~ebpf.TestRunner` for many test runs of this program: one attr and one
        pair of buffers built here, so ``runner.run(data)`` (``(retval, data_out)``) costs
        little more than the syscall. Arguments as for :meth:`test_run`; ``data_size_hint``
        is the expected input length. Build one per loop, not per run (each registers its
        attr with the program's fd until the program is closed)."""
        from ._testrun import TestRunner

        return TestRunner(self, data_size_hint=data_size_hint, data_out_size=data_out_size,
                          ctx=ctx, ctx_out_size=ctx_out_size, repeat=repeat, flags=flags,
                          cpu=cpu, batch_size=batch_size)


_EVERY = slice(None)
_new_tuple = tuple.__new__
_fast_syscall = fast_syscall  # keeps the GIL: close() cannot run during the call
_fast_errno = fast_errno

def _may_take_func_address(code: bytes) -> bool:
    """A cheap over-approximation (unaligned substring search) of "the program takes a
    subprogram's address" (``ld_imm64 rX, <subprogram>``: bytes 0x18, 0x40 | rX, as src_reg
    is BPF_PSEUDO_FUNC), so loads without callbacks never import the BTF package.

    Visits each 0x18 byte (found by memchr) rather than searching for each of the eleven
    pairs: those searches took 8 ms of a 100k-instruction load."""
    find = code.find
    last = len(code) - 1
    p = find(b"\x18")
    while 0 <= p < last:
        if 0x40 <= code[p + 1] <= 0x4A:  # 0x40 | dst for dst r0..r10
            return True
        p = find(b"\x18", p + 1)
    return False


_TEST_RUN_KEYWORDS = frozenset(
    {"ctx", "data_out_size", "ctx_out_size", "flags", "cpu", "batch_size"})

#: Program types whose test run takes no ctx_out (the kernel refuses it with EINVAL); syscall
#: programs write their context back into ctx_in instead.
_NO_CTX_OUT = frozenset({
    ProgramType.RAW_TRACEPOINT, ProgramType.RAW_TRACEPOINT_WRITABLE, ProgramType.TRACING,
    ProgramType.LSM, ProgramType.STRUCT_OPS, ProgramType.SYSCALL,
})


def _record_count(what: str, blob: bytes, rec_size: int) -> int:
    """How many ``rec_size``-byte records ``blob`` holds; a clear error instead of a division
    by zero or a silently dropped tail."""
    if rec_size <= 0:
        raise errors.InvalidArgumentError(
            f"{what}_rec_size", f"{what} was given without a record size (the kernel's is 8 "
            "for func_info, 16 for line_info)")
    if len(blob) % rec_size:
        raise errors.InvalidArgumentError(
            what, f"{len(blob)} bytes is not a multiple of the record size {rec_size}")
    return len(blob) // rec_size


def _resolve_attach_btf_id(prog_type: ProgramType | int,
                           attach_type: AttachType | int | None, name: str) -> int:
    """Find the vmlinux BTF id a tracing/LSM/iter/struct_ops program attaches to."""
    from . import btf

    spec = btf.load_kernel()
    pt = int(prog_type)
    at = int(attach_type) if attach_type is not None else -1
    candidates: list[str]
    kind: Any
    if pt == ProgramType.STRUCT_OPS:
        candidates, kind = [name], btf.Struct
    elif pt == ProgramType.TRACING and at == AttachType.TRACE_RAW_TP:
        candidates, kind = [f"btf_trace_{name}"], btf.Typedef
    elif pt == ProgramType.TRACING and at == AttachType.TRACE_ITER:
        candidates, kind = [f"bpf_iter_{name}"], btf.Func
    elif pt == ProgramType.LSM:
        candidates, kind = [f"bpf_lsm_{name}", name], btf.Func
    else:
        candidates, kind = [name], btf.Func
    for cand in candidates:
        try:
            found: int = spec.find(cand, kind=kind).id
            return found
        except KeyError:
            continue
    raise errors.NotSupportedError(f"attach target {candidates[0]!r}", detail="not in kernel BTF")


def _load_with_log(attr: _t.ProgLoadAttr, keep: list[Any], level: int, size: int, source: Any,
                   first_error: errors.SyscallError | None) -> tuple[FD, bytes]:
    """Load with a verifier log, growing the buffer until the log fits; the fd and the log.

    The buffer is at least 128 bytes: kernels before 6.4 refuse a smaller log with EINVAL."""
    size = max(size, 128)
    while True:
        log = ctypes.create_string_buffer(size)
        attr.log_level = level
        attr.log_size = size
        attr.log_buf = ctypes.addressof(log)
        attr.log_true_size = 0
        try:
            fd = bpf_fd(C.BPF_PROG_LOAD, attr, keep=(keep, log), what="program")
        except errors.SyscallError as e:
            true_size = attr.log_true_size
            if e.errno == _errno.ENOSPC and size < LOG_SIZE_MAX:
                size = max(true_size + 1, size * 2) if true_size >= size else size * 2
                size = min(size, LOG_SIZE_MAX)
                continue
            raw = log.raw
            text = raw.split(b"\0", 1)[0]
            if not text and first_error is not None:
                raise first_error from None
            err = errors.VerifierError(
                "BPF_PROG_LOAD", e.errno or 0, text,
                truncated=e.errno == _errno.ENOSPC,
                hint=e.hint if isinstance(e, errors.BPFPermissionError) and not text else "",
            )
            if err.insn is not None and source is not None and hasattr(source, "source"):
                try:
                    err.source = str(source.source(err.insn))
                except Exception:  # mapping is best effort
                    err.source = ""
            raise err from None
        # Loaded with a log (asked for, or the first failure was transient/log-dependent).
        attr.log_level = 0
        attr.log_size = 0
        attr.log_buf = 0
        return fd, log.raw.split(b"\0", 1)[0]
