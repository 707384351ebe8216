"""The ``ebpf`` command (also ``python -m ebpf``): a demo, inspection and probes.

Subcommands:

* ``demo`` — assemble a program, load it, run it with ``BPF_PROG_TEST_RUN`` and read the map
  it counts into: the shortest proof that the library works on this machine.
* ``feature [--json]`` — what the running kernel supports (map/program/link types, ISA).
* ``prog list`` / ``map list`` / ``link list`` / ``btf list`` — objects loaded in the kernel
  (all processes), like ``bpftool ... show``.
* ``prog dump ID`` — the translated instructions of a loaded program, disassembled.
* ``btf show NAME`` — a type of the kernel's BTF, with member offsets.
* ``disasm FILE`` — disassemble raw bytecode from a file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    import ebpf
    from ebpf import asm
    from ebpf.asm import R0, R1, R2, R10, Helper

    print(f"ebpf {ebpf.__version__} on Linux {ebpf.platform.kernel_version()} "
          f"({ebpf.platform.ARCH}, {ebpf.platform.possible_cpus()} possible CPUs)")
    with ebpf.Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=8, max_entries=2,
                         name="demo_counts") as counts:
        insns: list[asm.Item] = [
            # Count packets in slot 0 and their bytes in slot 1 of the array map.
            asm.mov(asm.R6, R1),
            asm.store_imm(asm.W, R10, -4, 0),
            asm.mov(R2, R10), asm.add(R2, -4),
            asm.load_map(R1, counts),
            asm.call(Helper.MAP_LOOKUP_ELEM),
            asm.jeq(R0, 0, "out"),
            asm.mov(R1, 1), asm.atomic_add(asm.DW, R0, R1, 0),
            asm.store_imm(asm.W, R10, -4, 1),
            asm.mov(R2, R10), asm.add(R2, -4),
            asm.load_map(R1, counts),
            asm.call(Helper.MAP_LOOKUP_ELEM),
            asm.jeq(R0, 0, "out"),
            asm.load(asm.W, R1, asm.R6, 0),          # skb->len
            asm.atomic_add(asm.DW, R0, R1, 0),
            asm.label("out"),
            asm.mov(R0, 0),
            asm.exit(),
        ]
        print("\nprogram:")
        print(asm.disassemble(asm.Instructions(insns)))
        with ebpf.Program.load(ebpf.ProgramType.SOCKET_FILTER, insns, name="demo") as prog:
            frame = bytes(14) + bytes(86)
            res = prog.test_run(data=frame, repeat=args.repeat)
            info = prog.info()
            print(f"\nloaded: id {info.id}, tag {info.tag.hex()}, "
                  f"{info.xlated_prog_len // 8} insns after verification")
            print(f"test_run: {args.repeat} runs, retval {res.retval}, "
                  f"{res.duration_ns} ns per run")
            print(f"map: packets={counts[0]}, bytes={counts[1]}")
            ok = counts[0] == args.repeat and counts[1] == args.repeat * (len(frame) - 14)
    print("\nOK" if ok else "\nMISMATCH")
    return 0 if ok else 1


def _feature(args: argparse.Namespace) -> int:
    from ebpf import features

    result = features.probe_all()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for group, answers in result.items():
        print(f"{group}:")
        for name, ok in answers.items():
            text = ok if isinstance(ok, str) else ("yes" if ok else "no")
            print(f"  {name:<28} {text}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from ebpf._sys import commands
    from ebpf._uapi import _generated_types as _t

    kind = {"prog": commands.ObjKind.PROG, "map": commands.ObjKind.MAP,
            "link": commands.ObjKind.LINK, "btf": commands.ObjKind.BTF}[args.what]
    info_cls: Any = {"prog": _t.BpfProgInfo, "map": _t.BpfMapInfo, "link": _t.BpfLinkInfo,
                     "btf": _t.BpfBtfInfo}[args.what]
    rows = []
    for obj_id in commands.iter_ids(kind):
        try:
            fd = commands.fd_by_id(kind, obj_id)
        except OSError:
            continue  # gone meanwhile
        with fd:
            info = commands.obj_info(fd.fileno(), info_cls())
        row: dict[str, Any] = {"id": obj_id}
        if args.what == "prog":
            row |= {"type": _name(_t.bpf_prog_type, info.type, "BPF_PROG_TYPE_"),
                    "name": _cstr(info.name), "tag": bytes(info.tag).hex(),
                    "insns": info.xlated_prog_len // 8}
        elif args.what == "map":
            row |= {"type": _name(_t.bpf_map_type, info.type, "BPF_MAP_TYPE_"),
                    "name": _cstr(info.name), "key": info.key_size, "value": info.value_size,
                    "max_entries": info.max_entries}
        elif args.what == "link":
            row |= {"type": _name(_t.bpf_link_type, info.type, "BPF_LINK_TYPE_"),
                    "prog_id": info.prog_id}
        else:
            row |= {"name": _cstr(info.name) if hasattr(info, "name") else "",
                    "size": info.btf_size, "kernel": bool(info.kernel_btf)}
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print("  ".join(f"{k}={v}" for k, v in row.items()))
    return 0


def _name(enum: Any, value: int, prefix: str) -> str:
    try:
        return str(enum(value).name.removeprefix(prefix).lower())
    except ValueError:
        return str(value)


def _cstr(raw: Any) -> str:
    data = bytes(raw) if not isinstance(raw, bytes) else raw
    return data.split(b"\0", 1)[0].decode("utf-8", "replace")


def _prog_dump(args: argparse.Namespace) -> int:
    import ebpf
    from ebpf import asm

    with ebpf.Program.from_id(args.id) as prog:
        print(asm.disassemble(prog.xlated()))
    return 0


def _btf_show(args: argparse.Namespace) -> int:
    from ebpf import btf

    spec = btf.load_kernel()
    t = spec.find(args.name)
    print(f"{type(t).__name__} {t.name} (id {t.id})")
    if isinstance(t, (btf.Struct, btf.Union)):
        print(f"size {t.size}")
        for m in t.members:
            bits = f":{m.bitfield_size}" if m.bitfield_size else ""
            mt = spec.resolve(m.type)
            print(f"  {m.offset // 8:>6}  {m.name or '(anon)'}{bits}  "
                  f"{type(mt).__name__} {mt.name}")
    elif isinstance(t, (btf.Enum, btf.Enum64)):
        for v in t.values:
            print(f"  {v.name} = {v.value}")
    return 0


def _disasm(args: argparse.Namespace) -> int:
    from ebpf import asm

    with open(args.file, "rb") as f:
        print(asm.disassemble(f.read()))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ebpf`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["tool"] or argv[:1] == ["exporter"]:  # they parse their own options
        from importlib import import_module

        run = import_module("ebpf.tools.run" if argv[0] == "tool" else "ebpf.exporter")
        return int(run.main(argv[1:]))
    if argv[:1] == ["gen"]:  # gen skeleton OBJ: ebpf.skeleton parses its own options
        from .skeleton import main as gen_main

        return gen_main(argv[1:])
    ap = argparse.ArgumentParser(prog="ebpf", description="Pure-Python eBPF toolkit.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("tool", help="run a bcc-style tool: ebpf tool NAME [options]")
    sub.add_parser("exporter", help="Prometheus exporter: ebpf exporter --config FILE")
    sub.add_parser("gen", help="typed Python skeleton of an object: ebpf gen skeleton OBJ")
    p = sub.add_parser("demo", help="load a program, run it, read its map")
    p.add_argument("--repeat", type=int, default=1000)
    p.set_defaults(fn=_demo)
    p = sub.add_parser("feature", help="probe kernel features")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=_feature)
    for what in ("prog", "map", "link", "btf"):
        p = sub.add_parser(what, help=f"inspect loaded {what} objects")
        psub = p.add_subparsers(dest="action", required=True)
        q = psub.add_parser("list")
        q.add_argument("--json", action="store_true")
        q.set_defaults(fn=_list, what=what)
        if what == "prog":
            q = psub.add_parser("dump")
            q.add_argument("id", type=int)
            q.set_defaults(fn=_prog_dump)
        if what == "btf":
            q = psub.add_parser("show")
            q.add_argument("name")
            q.set_defaults(fn=_btf_show)
    p = sub.add_parser("disasm", help="disassemble raw bytecode")
    p.add_argument("file")
    p.set_defaults(fn=_disasm)
    args = ap.parse_args(argv)
    try:
        rc: int = args.fn(args)
    except BrokenPipeError:
        with contextlib.suppress(Exception):
            sys.stdout.close()
        return 0
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
