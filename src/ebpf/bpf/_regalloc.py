"""Locals in registers: the compiler's stack-slot locals become registers where they fit.

The code generator keeps every scalar local (and the saved ctx, and loop bounds) in an
8-byte stack slot: each read is an ``ldxdw rX, [r10-k]``, each write an ``stxdw``. Here
each such slot whose every access is an 8-byte load or store at exactly its offset (its
address is never taken) becomes a *virtual* register; the peephole passes then merge the
temporaries into it, and the virtual registers are coloured with the machine's r0..r9 by
interference (liveness over the control-flow graph; a call clobbers r0..r5, so a local
live across one gets a callee-saved r6..r9). A slot whose virtual register finds no colour
is kept on the stack, and allocation runs again without it, so the result is never worse
than the stack code. The verifier tracks registers and spilled scalars alike, so both forms
verify; registers cost fewer instructions.

A slot that may be read before it is written on some path (live where the function starts)
stays on the stack: the verifier rejects reading an uninitialised register.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection

from .. import asm
from . import _peephole as ph
from ._peephole import FP, Func, Ins

__all__ = ["optimize"]

_LDXDW, _STXDW, _STDW = 0x79, 0x7B, 0x7A
_VBASE = 16
#: Colour preference: caller-saved first (free across no call), then callee-saved.
_ORDER = (1, 2, 3, 4, 5, 0, 6, 7, 8, 9)


def _slot_accesses(code: Func, slots: Collection[int]) -> set[int]:
    """The slots of ``slots`` whose every stack access is an exact 8-byte load/store."""
    ok = set(slots)
    bad: set[int] = set()
    real = [i for i in code if i.op >= 0]
    for i, j in itertools.pairwise(real):
        # an address taken (mov rX, r10; add rX, off): that slot is memory, not a value
        if i.src == FP and i.op == 0xBF and not i.off and j.op == 0x07 and j.dst == i.dst:
            bad |= {s for s in ok if s <= j.imm < s + 8}
    exact: set[int] = set()   # offsets of accesses already known to be exact slot accesses
    for i in real:
        op = i.op
        cls = op & 7
        base = i.src if cls == 1 else i.dst if cls in (2, 3) else None
        if base != FP:
            continue
        off = i.off
        if off in exact and op in (_LDXDW, _STXDW, _STDW):
            continue   # the same verdict as the last such access: nothing new is bad
        for s in ok:
            if off + _size(op) > s and off < s + 8 and not (
                    off == s and op in (_LDXDW, _STXDW, _STDW)):
                bad.add(s)
        if op in (_LDXDW, _STXDW, _STDW):
            exact.add(off)
    return ok - bad


def _size(op: int) -> int:
    return {0x18: 8, 0x00: 4, 0x08: 2, 0x10: 1}[op & 0x18]


def _promote(code: Func, slots: dict[int, int]) -> None:
    """Rewrite accesses of ``slots`` (offset -> virtual register) into register moves."""
    for k, i in enumerate(code):
        if i.op == _LDXDW and i.src == FP and i.off in slots:
            code[k] = Ins(0xBF, i.dst, slots[i.off])
        elif i.op == _STXDW and i.dst == FP and i.off in slots:
            code[k] = Ins(0xBF, slots[i.off], i.src)
        elif i.op == _STDW and i.dst == FP and i.off in slots:
            code[k] = Ins(0xB7, slots[i.off], 0, 0, i.imm)


def _live_at_entry(f: ph.Flow, slots: dict[int, int]) -> set[int]:
    """Virtual registers (after promotion) that may be read before being written."""
    if not f.starts:
        return set()
    live = f.live_in[0]
    return {v for v in slots.values() if live >> v & 1}


def _color(code: Func, entry_defs: int, first: Collection[int] = (),
           cheap: Collection[int] = (), f: ph.Flow | None = None, stop: bool = False
           ) -> tuple[dict[int, int], list[int]]:
    """A machine register for each virtual one, and the virtual registers that fit nowhere.
    Locals go first by decreasing use count, then the ``cheap`` ones (reused ctx loads,
    which can be loaded again instead), then the ``first`` ones (temporaries, which cannot
    go to the stack: a cheap or local neighbour gives up its register for them). ``f``:
    the flow of ``code``, when the caller has it. ``stop``: return at the first failure."""
    f = _flow_of(code, f)
    # interference as bit masks: a definition's register against everything live after it,
    # one OR per definition; made symmetric once at the end (each edge visited once)
    born: dict[int, int] = {}
    moves: dict[int, set[int]] = {}
    uses: dict[int, int] = {}
    virt = ~((1 << _VBASE) - 1)   # two machine registers never conflict here

    for b in range(len(f.starts)):
        live = f.local_live(b)
        for k in range(f.starts[b], f.ends[b]):
            i = code[k]
            if i.op < 0:
                continue
            u, d, _, _ = i._regs or ph.regs(i)
            v = (u | d) >> _VBASE
            if v:
                for r in (v.bit_length() - 1,) if not v & (v - 1) else ph.bits(v):
                    uses[r + _VBASE] = uses.get(r + _VBASE, 0) + 1
            if not d:
                continue
            out = live[k]
            if i.op == 0xBF and not i.off:   # ph.is_mov64x(i)
                out &= ~(1 << i.src)
                if i.src >= _VBASE or i.dst >= _VBASE:
                    moves.setdefault(i.src, set()).add(i.dst)
                    moves.setdefault(i.dst, set()).add(i.src)
            for r in (d.bit_length() - 1,) if not d & (d - 1) else ph.bits(d):
                m = out & ~(1 << r)
                if r < _VBASE:
                    m &= virt
                if m:
                    born[r] = born.get(r, 0) | m
    if f.starts:
        for r in ph.bits(entry_defs):
            m = f.live_in[0] & ~(1 << r)
            if r < _VBASE:
                m &= virt
            if m:
                born[r] = born.get(r, 0) | m
    adj = dict(born)
    for r, m in born.items():
        for x in ph.bits(m):
            adj[x] = adj.get(x, 0) | 1 << r
    edges = {r: ph.bits(m) for r, m in adj.items()}
    color: dict[int, int] = {}
    failed: list[int] = []
    for v in sorted(uses, key=lambda v: (v in first, v in cheap, -uses[v], v)):
        taken = {x if x < _VBASE else color.get(x, -1) for x in edges.get(v, ())}
        partners = moves.get(v, ())
        prefer = [color.get(m, m) for m in partners if color.get(m, m) < _VBASE]
        # look ahead: a register an uncoloured move partner cannot have would keep the move
        avoid = {x for m in partners if m >= _VBASE and m not in color
                 for x in edges.get(m, ()) if x < _VBASE}
        order = [r for r in _ORDER if r not in avoid] + [r for r in _ORDER if r in avoid]
        for r in (*prefer, *order):
            if r not in taken and r != FP:
                color[v] = r
                break
        else:
            loser = v
            if v in first:
                # a temporary cannot go to the stack: a local in its way gives up its register
                locals_ = [x for x in edges.get(v, ()) if x in color and x not in first]
                if locals_:
                    loser = min(locals_, key=lambda x: (x not in cheap, uses[x], x))
            failed.append(loser)
            if stop:   # the caller needs only to know that something failed
                break
    return color, failed


def _apply(code: Func, color: dict[int, int]) -> None:
    for i in code:
        if i.op < 0:
            continue
        if i.dst in color:
            i.dst = color[i.dst]
        if i.src in color and ph.src_is_reg(i):
            i.src = color[i.src]


def _flow_of(code: Func, f: ph.Flow | None) -> ph.Flow:
    """``f`` (built on a list equal to ``code``: a copy) made to describe ``code``, or a new
    flow of ``code``."""
    if f is None:
        return ph.Flow(code)
    f.code = code
    return f


def _split_webs(code: Func, regs: tuple[int, ...], first: int,
                f: ph.Flow | None = None) -> tuple[int, set[int]]:
    """Give each web (the definitions and uses joined by reaching definitions) of the
    machine registers ``regs`` its own virtual register, numbered from ``first``. A register
    read where it may hold nothing yet (from the function's start), or named implicitly by
    some instruction, keeps its webs. Returns the next free number and the new virtuals.
    ``f``: the flow of ``code``, when the caller has it (only its blocks are used)."""
    f = _flow_of(code, f)
    nb = len(f.starts)
    made: set[int] = set()
    # the register masks of every instruction, once: renaming one machine register's webs
    # to virtual registers changes none of the bits of the others
    masks = [ph.regs(i) for i in code]
    implied = 0   # registers some instruction names implicitly
    for u, d, eu, ed in masks:
        implied |= (u | d) & ~(eu | ed)
    block_of = [0] * len(code)   # instruction -> its block
    for b in range(nb):
        block_of[f.starts[b]:f.ends[b]] = [b] * (f.ends[b] - f.starts[b])
    for r in regs:
        bit = 1 << r
        if implied & bit:
            continue
        sites = [k for k, m in enumerate(masks) if m[3] & bit]
        if not sites:
            continue
        bad = False
        index = {k: n for n, k in enumerate(sites)}
        entry = 1 << len(sites)
        gen = [0] * nb
        kills = [False] * nb
        for k in sites:   # the last definition in each block
            b = block_of[k]
            gen[b], kills[b] = 1 << index[k], True
        def run(b: int, x: int, gen: list[int] = gen, kills: list[bool] = kills) -> int:
            return gen[b] if kills[b] else x

        inn, _ = ph.forward(f, run, False, 0, entry)
        parent = list(range(len(sites)))

        def find(a: int, parent: list[int] = parent) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        use_of: dict[int, int] = {}   # instruction -> a reaching definition (site number)
        for b in range(nb):
            cur = inn[b]
            for k in range(f.starts[b], f.ends[b]):
                _, _, eu, ed = masks[k]
                if not (eu | ed) & bit:
                    continue
                if eu & bit:
                    if cur & entry or not cur:
                        bad = True
                        break
                    reach = ph.bits(cur)
                    for x in reach[1:]:
                        parent[find(x)] = find(reach[0])
                    use_of[k] = reach[0]
                if ed & bit:
                    n = index[k]
                    if eu & bit:
                        parent[find(n)] = find(use_of[k])
                    cur = 1 << n
            if bad:
                break
        if bad:
            continue
        web_reg: dict[int, int] = {}
        for k, (_, _, eu, ed) in enumerate(masks):
            if not (eu | ed) & bit:
                continue
            i = code[k]
            use_v = def_v = None
            if k in use_of:
                use_v = web_reg.setdefault(find(use_of[k]), first + len(web_reg))
            if k in index:
                def_v = web_reg.setdefault(find(index[k]), first + len(web_reg))
            src_use = ph.src_is_reg(i) and i.src == r
            if i.dst == r:
                i.dst = def_v if ed & bit else use_v  # type: ignore[assignment]
            if src_use:
                i.src = use_v  # type: ignore[assignment]
        made |= set(web_reg.values())
        first += len(web_reg)
    return first, made


#: Helpers that leave the packet and the context as they are (the kernel's
#: bpf_helper_changes_pkt_data() is false for them): loads from the ctx survive them.
_KEEP_CTX = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 12, 14, 15, 16, 25, 35, 112, 113, 114, 115,
                       125, 130, 131, 132, 133})
_CSE_ROOM = 64   # virtual numbers kept between the locals and the temporaries
_ATTEMPTS = 4    # colourings tried (each drops the locals that found no register)


Expr = tuple[object, ...]


def _addr_key(i: Ins) -> Expr | None:
    """The constant an ``ld_imm64`` of a map or a global's address stands for."""
    if i.op != 0x18 or i.src not in (1, 2) or i.ref is None or i.target is not None:
        return None
    ref = i.ref if isinstance(i.ref, str) else id(i.ref)
    return ("A", i.src, ref, i.imm, i.imm2)


def _cse(code: Func, ctx: int | None, first: int, skip: set[Expr],
         f: ph.Flow | None = None) -> dict[int, Expr]:
    """Values computed again where an identical computation reaches on every path are
    reused: loads from the ctx register ``ctx`` (until a call that may change packet
    data) and ``ld_imm64`` of a map's or a global's address (constants). Every computation
    of such a value also copies it into one virtual register, numbered from ``first``, and
    the redundant ones read that instead. Returns virtual register -> expression.
    ``f``: the flow of ``code``, when the caller has it."""
    f = _flow_of(code, f)
    keys: set[Expr] = set()
    for i in code:
        key = _addr_key(i)
        if key is not None:
            keys.add(key)
        elif ctx is not None and i.op >= 0 and i.op & 7 == 1 and i.dst != ctx:
            keys.add(("L", i.op, i.off))
    exprs = sorted(keys - skip, key=repr)[:_CSE_ROOM]
    if not exprs:
        return {}
    idx = {e: n for n, e in enumerate(exprs)}
    full = (1 << len(exprs)) - 1
    lmask = sum(1 << n for e, n in idx.items() if e[0] == "L")
    nb = len(f.starts)
    start_alias = set() if ctx is None else {ctx}

    def kills(i: Ins) -> bool:
        if i.op == 0x85:
            return i.src != 0 or i.imm not in _KEEP_CTX
        return ctx is not None and bool((i._regs or ph.regs(i))[1] & (1 << ctx))

    def expr_of(i: Ins, alias: set[int]) -> int:
        if i.op >= 0 and i.op & 7 == 1 and i.src in alias:
            return idx.get(("L", i.op, i.off), -1)
        key = _addr_key(i)
        return -1 if key is None else idx.get(key, -1)

    def step(i: Ins, cur: int, alias: set[int]) -> int:
        """Availability after ``i``; ``alias`` (registers equal to the ctx) is updated."""
        if i.op < 0:
            return cur
        if kills(i):
            alias.intersection_update(start_alias)
            if ph.is_mov64x(i) and i.dst == ctx:   # the ctx saved: its source is one too
                alias.add(i.src)
            return cur & ~lmask
        n = expr_of(i, alias)
        if n >= 0:
            cur |= 1 << n
        d = (i._regs or ph.regs(i))[1]
        if d:
            drop = [r for r in alias if d >> r & 1 and r != ctx]
            if drop:
                alias.difference_update(drop)
        if i.op == 0xBF and not i.off and i.src in alias:   # ph.is_mov64x(i)
            alias.add(i.dst)
        return cur

    def run(b: int, cur: int) -> int:
        alias = set(start_alias)
        for k in range(f.starts[b], f.ends[b]):
            cur = step(code[k], cur, alias)
        return cur

    inn, _ = ph.forward(f, run, True, full)
    redundant: set[int] = set()
    seen: list[tuple[int, int]] = []   # (expression, availability before) per instruction
    for b in range(nb):
        cur = inn[b]
        alias = set(start_alias)
        for k in range(f.starts[b], f.ends[b]):
            n = expr_of(code[k], alias)
            if n >= 0 and cur >> n & 1:
                redundant.add(n)
            seen.append((n, cur))
            cur = step(code[k], cur, alias)
    if not redundant:
        return {}
    vreg = {n: first + n for n in redundant}
    new: Func = code[:f.starts[0]]   # the labels before the first instruction
    # (the blocks cover the code from the first block on: ``seen`` is in code order)
    for i, (n, cur) in zip(code[f.starts[0]:], seen, strict=True):
        if n in vreg and cur >> n & 1:
            new.append(Ins(0xBF, i.dst, vreg[n]))
        elif n in vreg:
            first_ = i.copy()
            first_.dst = vreg[n]
            new += [first_, Ins(0xBF, i.dst, vreg[n])]
        else:
            new.append(i)
    code[:] = new
    return {v: exprs[n] for n, v in vreg.items()}


#: What :func:`_prepare` gives :func:`_attempt`.
Prepared = tuple[Func | None, dict[int, int], set[int], set[int], "ph.Flow | None"]


def _prepare(base: Func, slots: set[int], split: bool) -> Prepared:
    """``base`` with ``slots`` promoted, the temporaries split into webs and cleaned:
    (code or None when some slot may be read before it is written, slot -> virtual register,
    the temporaries' virtual registers, the slots to keep on the stack next time, the flow
    of the code when the clean-up left one)."""
    code = [i.copy() for i in base]
    vregs = {s: _VBASE + n for n, s in enumerate(sorted(slots))}
    _promote(code, vregs)
    f = ph.Flow(code)
    early = _live_at_entry(f, vregs)
    if early:
        return None, vregs, set(), {s for s, v in vregs.items() if v in early}, None
    temps: set[int] = set()
    if split:
        _, temps = _split_webs(code, (6, 7, 8, 9), _VBASE + len(vregs) + _CSE_ROOM, f)
    flows: list[ph.Flow] = []
    ph.clean(code, flow_out=flows)
    return code, vregs, temps, set(), flows[0] if flows else None


def _attempt(prepared: Prepared, entry_defs: int, cse_: bool, ctx_slot: int | None,
             skip: set[Expr], consume: bool = False
             ) -> tuple[Func | None, set[int], set[Expr], bool]:
    """One allocation of :func:`_prepare`'s output (left as it is, unless ``consume``: the
    caller's last use of it): (code or None, slots to keep on the stack next time, ctx
    fields to load again each time, whether a temporary found no register with no local to
    blame). With ``cse_`` and nothing to reuse, None: the attempt without it gives that
    code already; with ``cse_`` the colouring stops at its first failure (what is lost is
    then only part of it: the caller keeps the attempt without reuse)."""
    ready, vregs, temps, early, f = prepared
    if ready is None:
        return None, early, set(), False
    code = list(ready) if consume else [i.copy() for i in ready]
    cse: dict[int, Expr] = {}
    if cse_:
        ctx = vregs.get(ctx_slot) if ctx_slot is not None else None
        cse = _cse(code, ctx, _VBASE + len(vregs), skip, f)
        if not cse:   # nothing to reuse: the code (and its colouring) of the plain attempt
            return None, set(), set(), False
        flows: list[ph.Flow] = []
        ph.clean(code, flow_out=flows)
        f = flows[0] if flows else None
    got, failed = _color(code, entry_defs, temps, cse, f, stop=cse_)
    if failed:
        lost = {s for s, v in vregs.items() if v in failed}
        lost_cse = {e for v, e in cse.items() if v in failed}
        return None, lost, lost_cse, not lost and not lost_cse
    _apply(code, got)
    ph.clean(code, final=True)
    return code, set(), set(), False


def _slots(code: Func) -> int:
    return sum(2 if i.op == 0x18 else 1 for i in code if i.op >= 0)


def optimize(items: list[asm.Item], slots: Collection[int] = (), entry_defs: int = 0b10,
             ctx_slot: int | None = None) -> list[asm.Item]:
    """The optimised items of one function: ``slots`` are the stack offsets of its scalar
    locals (candidates for registers), ``entry_defs`` the registers holding arguments at
    its start (bit ``1 << n`` for ``rn``), ``ctx_slot`` the slot (among ``slots``) of a
    program's saved ctx, whose field loads may be reused (see :func:`_cse`). Code the
    passes do not model is returned as is."""
    try:
        base = ph.parse(items)
    except ph.Unsupported:
        return items
    cand = _slot_accesses(base, slots)
    everything = set(cand)
    split = True
    best: Func | None = None
    prepared: Prepared | None = None
    for n in range(_ATTEMPTS + 2):
        if n >= _ATTEMPTS:
            cand = set()    # bounded work: every local back on the stack
        prepared = _prepare(base, cand, split)
        code, lost, _, temp_failed = _attempt(prepared, entry_defs, False, None, set())
        if code is not None:
            best = code
            break
        if temp_failed:
            split = False   # the code generator's own temporaries always fit
        cand -= lost
    addrs = [k for k in map(_addr_key, base) if k is not None]
    if best is not None and prepared is not None and cand == everything and (
            ctx_slot in cand or len(set(addrs)) < len(addrs)):
        # registers to spare: reuse ctx field loads and addresses too, if that is shorter
        # (from the same promoted and cleaned code: only the reuse and colouring differ)
        code, _, _, _ = _attempt(prepared, entry_defs, True, ctx_slot, set(), consume=True)
        if code is not None and _slots(code) < _slots(best):
            best = code
    if best is not None:
        return ph.emit(best)
    code = [i.copy() for i in base]  # pragma: no cover - the last round promotes nothing
    ph.clean(code)
    return ph.emit(code)
