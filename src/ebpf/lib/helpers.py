"""Named, typed wrappers for the common BPF helpers (clj-ebpf's ``helper-*``).

Each function places its arguments with :func:`ebpf.lib.call` (no clobbering, any
:data:`~ebpf.lib.Arg`: register, constant, ``fp(-16)``, stack value, map) and calls the
helper; the result is in R0, or moved to ``dst``. R1-R5 are clobbered, R6-R9 kept.
Callback arguments (``loop``, ``for_each_map_elem``, ``find_vma``, ``user_ringbuf_drain``,
``timer_set_callback``) take the label of a subprogram; :meth:`ebpf.Program.load` builds
the BTF func_info they need.

::

    from ebpf.lib import helpers as h
    h.get_current_pid_tgid(dst=R6)
    h.map_lookup_elem(counts, fp(-8))
    h.loop(10, "body", fp(-16))

Minimum kernels are those of the helper (see :func:`ebpf.catalog.helpers.min_kernel`).
"""

from __future__ import annotations

from .. import asm
from ..asm import R0, Helper, Register
from ..errors import AssemblerError
from ._call import Arg, call

__all__ = [
    "csum_diff", "find_vma", "for_each_map_elem", "get_attach_cookie",
    "get_current_ancestor_cgroup_id", "get_current_cgroup_id", "get_current_comm",
    "get_current_pid_tgid", "get_current_task", "get_current_task_btf", "get_current_uid_gid",
    "get_func_ip", "get_numa_node_id", "get_prandom_u32", "get_smp_processor_id", "get_stack",
    "get_stackid", "get_task_stack", "helper", "jiffies64", "ktime_get_boot_ns",
    "ktime_get_coarse_ns", "ktime_get_ns", "ktime_get_tai_ns", "loop", "map_delete_elem",
    "map_lookup_elem", "map_peek_elem", "map_pop_elem", "map_push_elem", "map_update_elem",
    "msg_redirect_hash", "msg_redirect_map", "perf_event_output", "perf_event_read",
    "probe_read", "probe_read_kernel", "probe_read_kernel_str", "probe_read_str",
    "probe_read_user", "probe_read_user_str", "redirect", "redirect_map", "ringbuf_discard",
    "ringbuf_output", "ringbuf_query", "ringbuf_reserve", "ringbuf_submit", "send_signal",
    "sk_redirect_hash", "sk_redirect_map", "skb_load_bytes", "skb_store_bytes", "snprintf",
    "spin_lock", "spin_unlock", "strncmp", "tail_call", "timer_cancel", "timer_init",
    "timer_set_callback", "timer_start", "trace_printk", "user_ringbuf_drain",
    "xdp_adjust_head", "xdp_adjust_tail",
]


def helper(h: Helper, *args: Arg, dst: Register = R0,
           callback: tuple[int, str] | None = None) -> list[asm.Instruction]:
    """Call ``h`` with ``args``; ``callback=(argno, label)`` puts the address of the
    subprogram ``label`` in argument ``argno`` (1-5) with ``asm.load_func``."""
    if callback is not None:
        n, label = callback
        if not 1 <= n <= 5 or not isinstance(label, str):
            raise AssemblerError(f"{h.c_name}: bad callback {callback!r}")
        full = list(args) + [None] * (n - len(args))
        if full[n - 1] is not None:
            raise AssemblerError(f"{h.c_name}: argument {n} is the callback")
        for a in full:
            if isinstance(a, Register) and a == Register(n):
                raise AssemblerError(f"{h.c_name}: R{n} is overwritten by the callback")
        out = call(h, *full)
        out.insert(len(out) - 1, asm.load_func(Register(n), label))
    else:
        out = call(h, *args)
    if dst != R0:
        out.append(asm.mov(dst, R0))
    return out


# --- maps -------------------------------------------------------------------------------------
def map_lookup_elem(map_: Arg, key: Arg, *, dst: Register = R0) -> list[asm.Instruction]:
    """``dst = bpf_map_lookup_elem(map, key)``: a value pointer or NULL (3.19)."""
    return helper(Helper.MAP_LOOKUP_ELEM, map_, key, dst=dst)


def map_update_elem(map_: Arg, key: Arg, value: Arg, flags: Arg = 0, *,
                    dst: Register = R0) -> list[asm.Instruction]:
    """``bpf_map_update_elem(map, key, value, flags)``: 0 or -errno (3.19)."""
    return helper(Helper.MAP_UPDATE_ELEM, map_, key, value, flags, dst=dst)


def map_delete_elem(map_: Arg, key: Arg, *, dst: Register = R0) -> list[asm.Instruction]:
    """``bpf_map_delete_elem(map, key)`` (3.19)."""
    return helper(Helper.MAP_DELETE_ELEM, map_, key, dst=dst)


def map_push_elem(map_: Arg, value: Arg, flags: Arg = 0, *, dst: Register = R0
                  ) -> list[asm.Instruction]:
    """``bpf_map_push_elem`` on a queue/stack (4.20)."""
    return helper(Helper.MAP_PUSH_ELEM, map_, value, flags, dst=dst)


def map_pop_elem(map_: Arg, value: Arg, *, dst: Register = R0) -> list[asm.Instruction]:
    """``bpf_map_pop_elem`` from a queue/stack into ``value`` (4.20)."""
    return helper(Helper.MAP_POP_ELEM, map_, value, dst=dst)


def map_peek_elem(map_: Arg, value: Arg, *, dst: Register = R0) -> list[asm.Instruction]:
    """``bpf_map_peek_elem`` of a queue/stack into ``value`` (4.20)."""
    return helper(Helper.MAP_PEEK_ELEM, map_, value, dst=dst)


def for_each_map_elem(map_: Arg, callback: str, ctx: Arg = 0, flags: Arg = 0, *,
                      dst: Register = R0) -> list[asm.Instruction]:
    """``bpf_for_each_map_elem(map, callback, ctx, flags)``: ``callback(map, key, value,
    ctx)`` returns 0 to go on, 1 to stop; R0 = elements visited (5.13)."""
    return helper(Helper.FOR_EACH_MAP_ELEM, map_, None, ctx, flags, dst=dst,
                  callback=(2, callback))


# --- memory -----------------------------------------------------------------------------------
def probe_read(dst_ptr: Arg, size: Arg, src: Arg, *, dst: Register = R0
               ) -> list[asm.Instruction]:
    """``bpf_probe_read`` (4.1; prefer the _kernel/_user variants, 5.5)."""
    return helper(Helper.PROBE_READ, dst_ptr, size, src, dst=dst)


def probe_read_kernel(dst_ptr: Arg, size: Arg, src: Arg, *, dst: Register = R0
                      ) -> list[asm.Instruction]:
    """``bpf_probe_read_kernel(dst, size, unsafe_ptr)``: 0 or -EFAULT (5.5)."""
    return helper(Helper.PROBE_READ_KERNEL, dst_ptr, size, src, dst=dst)


def probe_read_user(dst_ptr: Arg, size: Arg, src: Arg, *, dst: Register = R0
                    ) -> list[asm.Instruction]:
    """``bpf_probe_read_user(dst, size, unsafe_ptr)`` (5.5)."""
    return helper(Helper.PROBE_READ_USER, dst_ptr, size, src, dst=dst)


def probe_read_str(dst_ptr: Arg, size: Arg, src: Arg, *, dst: Register = R0
                   ) -> list[asm.Instruction]:
    """``bpf_probe_read_str``: length read including the NUL (4.11)."""
    return helper(Helper.PROBE_READ_STR, dst_ptr, size, src, dst=dst)


def probe_read_kernel_str(dst_ptr: Arg, size: Arg, src: Arg, *, dst: Register = R0
                          ) -> list[asm.Instruction]:
    """``bpf_probe_read_kernel_str`` (5.5)."""
    return helper(Helper.PROBE_READ_KERNEL_STR, dst_ptr, size, src, dst=dst)


def probe_read_user_str(dst_ptr: Arg, size: Arg, src: Arg, *, dst: Register = R0
                        ) -> list[asm.Instruction]:
    """``bpf_probe_read_user_str`` (5.5)."""
    return helper(Helper.PROBE_READ_USER_STR, dst_ptr, size, src, dst=dst)


def strncmp(s1: Arg, size: Arg, s2: Arg, *, dst: Register = R0) -> list[asm.Instruction]:
    """``bpf_strncmp(s1, s1_sz, s2)``; ``s2`` must be a read-only map value string (5.17)."""
    return helper(Helper.STRNCMP, s1, size, s2, dst=dst)


def snprintf(out: Arg, size: Arg, fmt: Arg, data: Arg, data_len: Arg, *,
             dst: Register = R0) -> list[asm.Instruction]:
    """``bpf_snprintf(str, size, fmt, data, data_len)``; ``fmt`` in a read-only map (5.13)."""
    return helper(Helper.SNPRINTF, out, size, fmt, data, data_len, dst=dst)


# --- time, ids, random ------------------------------------------------------------------------
def ktime_get_ns(*, dst: Register = R0) -> list[asm.Instruction]:
    """``CLOCK_MONOTONIC`` in ns (4.1)."""
    return helper(Helper.KTIME_GET_NS, dst=dst)


def ktime_get_boot_ns(*, dst: Register = R0) -> list[asm.Instruction]:
    """``CLOCK_BOOTTIME`` in ns (5.8)."""
    return helper(Helper.KTIME_GET_BOOT_NS, dst=dst)


def ktime_get_coarse_ns(*, dst: Register = R0) -> list[asm.Instruction]:
    """``CLOCK_MONOTONIC_COARSE`` in ns (5.11)."""
    return helper(Helper.KTIME_GET_COARSE_NS, dst=dst)


def ktime_get_tai_ns(*, dst: Register = R0) -> list[asm.Instruction]:
    """``CLOCK_TAI`` in ns (6.1)."""
    return helper(Helper.KTIME_GET_TAI_NS, dst=dst)


def jiffies64(*, dst: Register = R0) -> list[asm.Instruction]:
    """The 64-bit jiffies counter (5.5)."""
    return helper(Helper.JIFFIES64, dst=dst)


def get_prandom_u32(*, dst: Register = R0) -> list[asm.Instruction]:
    """A pseudo-random u32 (4.1)."""
    return helper(Helper.GET_PRANDOM_U32, dst=dst)


def get_smp_processor_id(*, dst: Register = R0) -> list[asm.Instruction]:
    """The current CPU (4.1)."""
    return helper(Helper.GET_SMP_PROCESSOR_ID, dst=dst)


def get_numa_node_id(*, dst: Register = R0) -> list[asm.Instruction]:
    """The current NUMA node (4.10)."""
    return helper(Helper.GET_NUMA_NODE_ID, dst=dst)


def get_current_pid_tgid(*, dst: Register = R0) -> list[asm.Instruction]:
    """``tgid << 32 | pid`` of the current task (userspace PID in the upper half; 4.2)."""
    return helper(Helper.GET_CURRENT_PID_TGID, dst=dst)


def get_current_uid_gid(*, dst: Register = R0) -> list[asm.Instruction]:
    """``gid << 32 | uid`` of the current task (4.2)."""
    return helper(Helper.GET_CURRENT_UID_GID, dst=dst)


def get_current_comm(buf: Arg, size: Arg = 16, *, dst: Register = R0
                     ) -> list[asm.Instruction]:
    """Copy the current task's name (``TASK_COMM_LEN`` = 16) to ``buf`` (4.2)."""
    return helper(Helper.GET_CURRENT_COMM, buf, size, dst=dst)


def get_current_task(*, dst: Register = R0) -> list[asm.Instruction]:
    """``struct task_struct *`` as a scalar, for probe reads (4.8)."""
    return helper(Helper.GET_CURRENT_TASK, dst=dst)


def get_current_task_btf(*, dst: Register = R0) -> list[asm.Instruction]:
    """``struct task_struct *`` as a BTF pointer, read directly in tracing programs (5.11)."""
    return helper(Helper.GET_CURRENT_TASK_BTF, dst=dst)


def get_current_cgroup_id(*, dst: Register = R0) -> list[asm.Instruction]:
    """cgroup v2 id of the current task (4.18)."""
    return helper(Helper.GET_CURRENT_CGROUP_ID, dst=dst)


def get_current_ancestor_cgroup_id(level: Arg, *, dst: Register = R0
                                   ) -> list[asm.Instruction]:
    """Id of the current task's cgroup ancestor at ``level`` (5.7)."""
    return helper(Helper.GET_CURRENT_ANCESTOR_CGROUP_ID, level, dst=dst)


def get_func_ip(ctx: Arg, *, dst: Register = R0) -> list[asm.Instruction]:
    """Address of the traced function (5.15)."""
    return helper(Helper.GET_FUNC_IP, ctx, dst=dst)


def get_attach_cookie(ctx: Arg, *, dst: Register = R0) -> list[asm.Instruction]:
    """The cookie given at attach time (5.15)."""
    return helper(Helper.GET_ATTACH_COOKIE, ctx, dst=dst)


def send_signal(sig: Arg, *, dst: Register = R0) -> list[asm.Instruction]:
    """Send ``sig`` to the current process (5.3)."""
    return helper(Helper.SEND_SIGNAL, sig, dst=dst)


# --- stacks, perf, ring buffers, printk ---------------------------------------------------
def get_stackid(ctx: Arg, map_: Arg, flags: Arg = 0, *, dst: Register = R0
                ) -> list[asm.Instruction]:
    """Id of the current stack in a ``STACK_TRACE`` map (4.6)."""
    return helper(Helper.GET_STACKID, ctx, map_, flags, dst=dst)


def get_stack(ctx: Arg, buf: Arg, size: Arg, flags: Arg = 0, *, dst: Register = R0
              ) -> list[asm.Instruction]:
    """Copy the current stack to ``buf`` (4.18)."""
    return helper(Helper.GET_STACK, ctx, buf, size, flags, dst=dst)


def get_task_stack(task: Arg, buf: Arg, size: Arg, flags: Arg = 0, *, dst: Register = R0
                   ) -> list[asm.Instruction]:
    """Copy ``task``'s stack to ``buf`` (5.9)."""
    return helper(Helper.GET_TASK_STACK, task, buf, size, flags, dst=dst)


def perf_event_output(ctx: Arg, map_: Arg, flags: Arg, data: Arg, size: Arg, *,
                      dst: Register = R0) -> list[asm.Instruction]:
    """Write ``data`` to a ``PERF_EVENT_ARRAY`` (``flags`` = ``BPF_F_CURRENT_CPU``
    = 0xffffffff for this CPU's buffer; 4.4)."""
    return helper(Helper.PERF_EVENT_OUTPUT, ctx, map_, flags, data, size, dst=dst)


def perf_event_read(map_: Arg, flags: Arg, *, dst: Register = R0) -> list[asm.Instruction]:
    """Read a perf counter from a ``PERF_EVENT_ARRAY`` (4.3)."""
    return helper(Helper.PERF_EVENT_READ, map_, flags, dst=dst)


def ringbuf_output(ring: Arg, data: Arg, size: Arg, flags: Arg = 0, *,
                   dst: Register = R0) -> list[asm.Instruction]:
    """Copy a record into a ring buffer (5.8)."""
    return helper(Helper.RINGBUF_OUTPUT, ring, data, size, flags, dst=dst)


def ringbuf_reserve(ring: Arg, size: int, flags: Arg = 0, *, dst: Register = R0
                    ) -> list[asm.Instruction]:
    """Reserve ``size`` (a constant) bytes; NULL when full (5.8)."""
    return helper(Helper.RINGBUF_RESERVE, ring, size, flags, dst=dst)


def ringbuf_submit(record: Arg, flags: Arg = 0) -> list[asm.Instruction]:
    """Publish a reserved record (5.8)."""
    return helper(Helper.RINGBUF_SUBMIT, record, flags)


def ringbuf_discard(record: Arg, flags: Arg = 0) -> list[asm.Instruction]:
    """Drop a reserved record (5.8)."""
    return helper(Helper.RINGBUF_DISCARD, record, flags)


def ringbuf_query(ring: Arg, what: Arg = 0, *, dst: Register = R0) -> list[asm.Instruction]:
    """``BPF_RB_AVAIL_DATA`` (0), ``RING_SIZE``, ``CONS_POS``, ``PROD_POS`` (5.8)."""
    return helper(Helper.RINGBUF_QUERY, ring, what, dst=dst)


def user_ringbuf_drain(ring: Arg, callback: str, ctx: Arg = 0, flags: Arg = 0, *,
                       dst: Register = R0) -> list[asm.Instruction]:
    """Drain a ``USER_RINGBUF``: ``callback(dynptr, ctx)`` per sample (6.1)."""
    return helper(Helper.USER_RINGBUF_DRAIN, ring, None, ctx, flags, dst=dst,
                  callback=(2, callback))


def trace_printk(fmt: Arg, size: Arg, *args: Arg, dst: Register = R0
                 ) -> list[asm.Instruction]:
    """``bpf_trace_printk(fmt, fmt_size, ...)`` with up to 3 values (4.1; see
    :func:`ebpf.lib.patterns.trace_println` for a format built on the stack)."""
    if len(args) > 3:
        raise AssemblerError(f"trace_printk takes at most 3 values, not {len(args)}")
    return helper(Helper.TRACE_PRINTK, fmt, size, *args, dst=dst)


# --- control flow -----------------------------------------------------------------------------
def tail_call(ctx: Arg, prog_array: Arg, index: Arg) -> list[asm.Instruction]:
    """Jump to ``prog_array[index]``; falls through when the slot is empty (4.2)."""
    return helper(Helper.TAIL_CALL, ctx, prog_array, index)


def loop(nr_loops: Arg, callback: str, ctx: Arg = 0, flags: Arg = 0, *,
         dst: Register = R0) -> list[asm.Instruction]:
    """``bpf_loop``: ``callback(index, ctx)`` up to ``nr_loops`` times (returns 1 to stop);
    R0 = iterations run (5.17)."""
    return helper(Helper.LOOP, nr_loops, None, ctx, flags, dst=dst, callback=(2, callback))


def find_vma(task: Arg, addr: Arg, callback: str, ctx: Arg = 0, flags: Arg = 0, *,
             dst: Register = R0) -> list[asm.Instruction]:
    """``callback(task, vma, ctx)`` on the vma of ``task`` holding ``addr`` (5.17)."""
    return helper(Helper.FIND_VMA, task, addr, None, ctx, flags, dst=dst,
                  callback=(3, callback))


def spin_lock(lock: Arg) -> list[asm.Instruction]:
    """Take the ``struct bpf_spin_lock`` at ``lock`` (in a map value with BTF; 5.1)."""
    return helper(Helper.SPIN_LOCK, lock)


def spin_unlock(lock: Arg) -> list[asm.Instruction]:
    """Release the lock (5.1)."""
    return helper(Helper.SPIN_UNLOCK, lock)


def timer_init(timer: Arg, map_: Arg, flags: Arg = 1, *, dst: Register = R0
               ) -> list[asm.Instruction]:
    """Initialise the ``struct bpf_timer`` at ``timer`` (flags: clock id, 1 = MONOTONIC;
    5.15)."""
    return helper(Helper.TIMER_INIT, timer, map_, flags, dst=dst)


def timer_set_callback(timer: Arg, callback: str, *, dst: Register = R0
                       ) -> list[asm.Instruction]:
    """``callback(map, key, value)`` runs when the timer fires (5.15)."""
    return helper(Helper.TIMER_SET_CALLBACK, timer, None, dst=dst, callback=(2, callback))


def timer_start(timer: Arg, nsecs: Arg, flags: Arg = 0, *, dst: Register = R0
                ) -> list[asm.Instruction]:
    """Arm the timer ``nsecs`` from now (5.15)."""
    return helper(Helper.TIMER_START, timer, nsecs, flags, dst=dst)


def timer_cancel(timer: Arg, *, dst: Register = R0) -> list[asm.Instruction]:
    """Cancel the timer (5.15)."""
    return helper(Helper.TIMER_CANCEL, timer, dst=dst)


# --- packets and redirects --------------------------------------------------------------------
def skb_load_bytes(skb: Arg, offset: Arg, to: Arg, size: Arg, *, dst: Register = R0
                   ) -> list[asm.Instruction]:
    """Copy packet bytes to ``to`` (4.5)."""
    return helper(Helper.SKB_LOAD_BYTES, skb, offset, to, size, dst=dst)


def skb_store_bytes(skb: Arg, offset: Arg, src: Arg, size: Arg, flags: Arg = 0, *,
                    dst: Register = R0) -> list[asm.Instruction]:
    """Write ``src`` into the packet (4.1)."""
    return helper(Helper.SKB_STORE_BYTES, skb, offset, src, size, flags, dst=dst)


def csum_diff(from_: Arg, from_size: Arg, to: Arg, to_size: Arg, seed: Arg = 0, *,
              dst: Register = R0) -> list[asm.Instruction]:
    """Checksum difference of two buffers (4.6)."""
    return helper(Helper.CSUM_DIFF, from_, from_size, to, to_size, seed, dst=dst)


def xdp_adjust_head(ctx: Arg, delta: Arg, *, dst: Register = R0) -> list[asm.Instruction]:
    """Grow (negative) or shrink the packet head (4.10)."""
    return helper(Helper.XDP_ADJUST_HEAD, ctx, delta, dst=dst)


def xdp_adjust_tail(ctx: Arg, delta: Arg, *, dst: Register = R0) -> list[asm.Instruction]:
    """Grow or shrink the packet tail (4.18)."""
    return helper(Helper.XDP_ADJUST_TAIL, ctx, delta, dst=dst)


def redirect(ifindex: Arg, flags: Arg = 0, *, dst: Register = R0) -> list[asm.Instruction]:
    """``bpf_redirect``: R0 = ``XDP_REDIRECT``/``TC_ACT_REDIRECT`` to return (4.4)."""
    return helper(Helper.REDIRECT, ifindex, flags, dst=dst)


def redirect_map(map_: Arg, key: Arg, flags: Arg = 0, *, dst: Register = R0
                 ) -> list[asm.Instruction]:
    """``bpf_redirect_map`` (devmap/cpumap/xskmap): R0 = ``XDP_REDIRECT``, or the low two
    bits of ``flags`` when ``key`` has no entry (the fallback action, 5.6; 4.14)."""
    return helper(Helper.REDIRECT_MAP, map_, key, flags, dst=dst)


def sk_redirect_map(skb: Arg, map_: Arg, key: Arg, flags: Arg = 0, *, dst: Register = R0
                    ) -> list[asm.Instruction]:
    """``SK_SKB`` verdict: redirect to the socket at ``key`` of a sockmap (4.14)."""
    return helper(Helper.SK_REDIRECT_MAP, skb, map_, key, flags, dst=dst)


def sk_redirect_hash(skb: Arg, map_: Arg, key: Arg, flags: Arg = 0, *, dst: Register = R0
                     ) -> list[asm.Instruction]:
    """``SK_SKB`` verdict: redirect to the socket at ``*key`` of a sockhash (4.18)."""
    return helper(Helper.SK_REDIRECT_HASH, skb, map_, key, flags, dst=dst)


def msg_redirect_map(msg: Arg, map_: Arg, key: Arg, flags: Arg = 0, *, dst: Register = R0
                     ) -> list[asm.Instruction]:
    """``SK_MSG`` verdict: redirect to the socket at ``key`` of a sockmap (4.17)."""
    return helper(Helper.MSG_REDIRECT_MAP, msg, map_, key, flags, dst=dst)


def msg_redirect_hash(msg: Arg, map_: Arg, key: Arg, flags: Arg = 0, *, dst: Register = R0
                      ) -> list[asm.Instruction]:
    """``SK_MSG`` verdict: redirect to the socket at ``*key`` of a sockhash (4.18)."""
    return helper(Helper.MSG_REDIRECT_HASH, msg, map_, key, flags, dst=dst)
