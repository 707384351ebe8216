#!/usr/bin/env python3
"""Generate ``src/ebpf/asm/_generated_helpers.py``: the ``Helper`` enum and helper metadata.

Inputs:

* helper ids: every member of ``enum bpf_func_id`` in the pinned kernel BTF
  (``tests/testdata/vmlinux.btf.gz``), read with the package's own BTF reader;
* prototypes and one-line descriptions: the helper documentation comment of a uapi
  ``linux/bpf.h`` (default ``/usr/include/linux/bpf.h``). Helpers newer than that header get
  their prototype from ``SUPPLEMENT`` below, or none;
* allowed program types (optional): ``--probe`` asks the running kernel through
  ``ebpf.features.have_helper`` and records the answers with its version; without it the
  table is ``None`` (unknown) and ``asm.call(..., prog_type=...)`` checks nothing.

Usage: ``python tools/gen_helpers.py [--btf PATH] [--header PATH] [--probe] [--check]``.
``--check`` regenerates into memory and exits 1 if the file on disk differs. The probe
results, once recorded, are kept by later runs without ``--probe``.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import hashlib
import platform
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from ebpf import btf  # noqa: E402

PINNED = ROOT / "tests" / "testdata" / "vmlinux.btf.gz"
PINNED_VERSION = ROOT / "tests" / "testdata" / "vmlinux.btf.version"
HEADER = Path("/usr/include/linux/bpf.h")
OUTPUT = ROOT / "src" / "ebpf" / "asm" / "_generated_helpers.py"

#: Prototypes of helpers added after Linux 6.1's uapi header (Debian's linux-libc-dev), taken
#: from the helper documentation of the kernel's ``include/uapi/linux/bpf.h``.
SUPPLEMENT: dict[str, tuple[str, str]] = {
    "cgrp_storage_get": (
        "void *bpf_cgrp_storage_get(struct bpf_map *map, struct cgroup *cgroup, void *value,"
        " u64 flags)",
        "Get a bpf_local_storage from the cgroup.",
    ),
    "cgrp_storage_delete": (
        "long bpf_cgrp_storage_delete(struct bpf_map *map, struct cgroup *cgroup)",
        "Delete a bpf_local_storage from a cgroup.",
    ),
}

_PROTO = re.compile(r"^ \* ((?:[A-Za-z_][\w ]*?)[\s*]+bpf_(\w+)\(.*\))\s*$")


def helper_ids(btf_path: Path) -> list[tuple[str, int]]:
    """``(name without BPF_FUNC_, id)`` for every member of ``enum bpf_func_id``."""
    spec = btf.Spec.from_file(str(btf_path))
    enum = spec.find("bpf_func_id", kind=btf.Enum)
    out: list[tuple[str, int]] = []
    for v in enum.values:
        name, value = (v.name, v.value) if hasattr(v, "name") else (v[0], v[1])
        if not name.startswith("BPF_FUNC_"):
            continue  # __BPF_FUNC_MAX_ID
        out.append((name[len("BPF_FUNC_") :], int(value)))
    return out


def header_docs(text: str) -> dict[str, tuple[str, str]]:
    """``name -> (prototype, one-line description)`` from the helper documentation comment."""
    start = text.find("Start of BPF helper function descriptions:")
    end = text.find("*/", start)
    lines = text[start:end].splitlines()
    docs: dict[str, tuple[str, str]] = {}
    i = 0
    while i < len(lines):
        m = _PROTO.match(lines[i])
        if not m:
            i += 1
            continue
        proto = " ".join(m[1].split())
        name = m[2]
        desc_lines: list[str] = []
        j = i + 1
        in_desc = False
        while j < len(lines) and not _PROTO.match(lines[j]):
            body = lines[j].lstrip(" *").strip()
            if body == "Description":
                in_desc = True
            elif body == "Return":
                break
            elif in_desc:
                if not body and desc_lines:
                    break
                if body:
                    desc_lines.append(body)
            j += 1
        docs[name] = (proto, _first_sentence(" ".join(desc_lines)))
        i = j
    return docs


def _first_sentence(text: str) -> str:
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", text)
    text = re.sub(r"\*(.+?)\*", r"\1", text)
    text = text.replace("\\ ", "").replace("\\", "")
    m = re.search(r"^(.+?[.:])(\s|$)", text)
    return (m[1] if m else text).strip()


def _str_lit(s: str, indent: int) -> list[str]:
    """A string literal, split into adjacent literals to fit 100 columns."""
    width = 96 - indent
    r = repr(s)
    if len(r) <= width:
        return [r]
    parts: list[str] = []
    cur = ""
    for word in re.split(r"(?<= )", s):
        if len(repr(cur + word)) > width and cur:
            parts.append(cur)
            cur = word
        else:
            cur += word
    if cur:
        parts.append(cur)
    return [repr(p) for p in parts]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def existing_probe() -> tuple[dict[int, frozenset[int]] | None, str]:
    """Probe results recorded in the current output, to keep across regenerations."""
    if not OUTPUT.exists():
        return None, ""
    src = OUTPUT.read_text()
    m = re.search(r"^PROGRAM_TYPES_SOURCE = (.*)$", src, re.M)
    source = ast.literal_eval(m[1]) if m else ""
    m = re.search(r"^PROGRAM_TYPES: .*? = (None|\{.*?^\})$", src, re.M | re.S)
    if not m or m[1] == "None":
        return None, ""
    table = ast.literal_eval(m[1].replace("frozenset(", "(").replace("frozenset()", "()"))
    return {k: frozenset(v) for k, v in table.items()}, source


def probe(ids: list[tuple[str, int]]) -> tuple[dict[int, frozenset[int]], str]:
    """Ask the running kernel which program types may call each helper."""
    # Probing needs the loader (layer 3+), which the generator does not otherwise import.
    from ebpf import errors, features
    from ebpf._types import (  # type: ignore[import-not-found,unused-ignore]
        ProgramType,
    )

    table: dict[int, set[int]] = {hid: set() for _, hid in ids}
    for pt in ProgramType:
        for _, hid in ids:
            if hid == 0:
                continue
            try:
                features.have_helper(pt, hid)
            except errors.NotSupportedError:
                continue
            except errors.BPFError:
                continue
            table[hid].add(int(pt))
    return {k: frozenset(v) for k, v in table.items()}, f"probed on Linux {platform.release()}"


Probed = tuple[dict[int, frozenset[int]] | None, str]


def generate(btf_path: Path, header: Path, probed: Probed) -> str:
    ids = helper_ids(btf_path)
    docs = header_docs(header.read_text()) if header.exists() else {}
    version = PINNED_VERSION.read_text().strip() if PINNED_VERSION.exists() else "unknown"
    header_sha = _sha(header) if header.exists() else "-"
    btf_rel = btf_path.relative_to(ROOT) if btf_path.is_relative_to(ROOT) else btf_path
    out = [
        f"# Code generated by tools/gen_helpers.py from {btf_rel} (Linux {version},",
        f"# sha256 {_sha(btf_path)}) and {header} (sha256 {header_sha});",
        "# DO NOT EDIT.",
        '"""BPF helper ids (kernel ``enum bpf_func_id``) and their documented prototypes."""',
        "",
        "from __future__ import annotations",
        "",
        "from ._helper_base import HelperBase",
        "",
        '__all__ = ["PROGRAM_TYPES", "PROGRAM_TYPES_SOURCE", "SIGNATURES", "Helper"]',
        "",
        "",
        "class Helper(HelperBase):",
        '    """A BPF helper function; the value is its id in the kernel\'s ``enum bpf_func_id``.',
        "",
        "    ``Helper.MAP_LOOKUP_ELEM`` is ``BPF_FUNC_map_lookup_elem`` (1). Look helpers up with",
        "    ``Helper(1)`` or ``Helper.by_name(\"map_lookup_elem\")``; ``.signature`` gives the",
        "    C prototype, ``.program_types`` the program types allowed to call it when recorded.",
        '    """',
        "",
    ]
    for name, hid in ids:
        out.append(f"    {name.upper()} = {hid}  #: ``BPF_FUNC_{name}``")
    out += ["", "", "#: helper id -> (C prototype, one-line description)"]
    out.append("SIGNATURES: dict[int, tuple[str, str]] = {")
    missing = []
    for name, hid in ids:
        entry = docs.get(name) or SUPPLEMENT.get(name)
        if entry is None:
            if hid:
                missing.append(name)
            continue
        out.append(f"    {hid}: (")
        for part in (entry[0], entry[1]):
            lits = _str_lit(part, 8)
            if len(lits) == 1:
                out.append(f"        {lits[0]},")
            else:
                out.append("        (")
                out += [f"            {lit}" for lit in lits]
                out.append("        ),")
        out.append("    ),")
    out.append("}")
    out += ["", "#: Helpers without a documented prototype in the inputs."]
    out.append(f"UNDOCUMENTED: tuple[str, ...] = {tuple(missing)!r}")
    table, source = probed
    out += [
        "",
        "#: helper id -> values of the program types allowed to call it; None: not recorded.",
        f"PROGRAM_TYPES_SOURCE = {source!r}",
    ]
    if table is None:
        out.append("PROGRAM_TYPES: dict[int, frozenset[int]] | None = None")
    else:
        out.append("PROGRAM_TYPES: dict[int, frozenset[int]] | None = {")
        for hid in sorted(table):
            vals = sorted(table[hid])
            line = f"    {hid}: frozenset({vals!r}),"
            if len(line) <= 100:
                out.append(line)
            else:
                out.append(f"    {hid}: frozenset(")
                out.append("        [")
                chunk: list[str] = []
                for v in vals:
                    chunk.append(str(v))
                    if len(", ".join(chunk)) > 80:
                        out.append("            " + ", ".join(chunk) + ",")
                        chunk = []
                if chunk:
                    out.append("            " + ", ".join(chunk) + ",")
                out.append("        ]")
                out.append("    ),")
        out.append("}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--btf", type=Path, default=PINNED)
    ap.add_argument("--header", type=Path, default=HEADER)
    ap.add_argument("--probe", action="store_true", help="record allowed program types")
    ap.add_argument("--check", action="store_true", help="exit 1 if the output is stale")
    args = ap.parse_args(argv)
    probed = existing_probe()
    if args.probe:
        probed = probe(helper_ids(args.btf))
    text = generate(args.btf, args.header, probed)
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(True), text.splitlines(True), str(OUTPUT), "regenerated"
                )
            )
            print(f"{OUTPUT} is stale; run tools/gen_helpers.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
