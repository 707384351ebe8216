"""Mutation fuzzing of the pure parsers: ELF objects, BTF, BTF.ext, the disassembler (round
trip through the assembler), the text assembler and the uprobe/USDT ELF layer.

``tests/fuzz/test_fuzz.py`` runs a bounded budget in CI (``EBPF_FUZZ_CASES``, default 20,000
cases over all targets); a longer run is one command::

    python -m tests.fuzz --cases 200000            # all targets, findings to fuzz-findings/
    python -m tests.fuzz --cases 50000 --target asm --seed 7
    EBPF_FUZZ_CASES=200000 python -m pytest tests/fuzz

Seeds are objects compiled in the run with clang-19 from ``tests/testdata`` (and the uprobe
target with gcc), their BTF, the pinned ``tests/testdata/vmlinux.btf.gz`` and their
disassembly. See ``harness.py``.
"""
