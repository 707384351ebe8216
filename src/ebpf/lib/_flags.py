"""Kernel flag values the libraries use, taken from the generated ABI layer."""

from __future__ import annotations

from .._uapi import _generated_types as _t

BPF_F_PSEUDO_HDR: int = _t.BPF_F_PSEUDO_HDR
BPF_F_MARK_MANGLED_0: int = _t.BPF_F_MARK_MANGLED_0
BPF_F_HDR_FIELD_MASK: int = _t.BPF_F_HDR_FIELD_MASK
BPF_ANY: int = _t.BPF_ANY
BPF_NOEXIST: int = _t.BPF_NOEXIST
BPF_EXIST: int = _t.BPF_EXIST
BPF_RB_NO_WAKEUP: int = _t.BPF_RB_NO_WAKEUP
BPF_RB_FORCE_WAKEUP: int = _t.BPF_RB_FORCE_WAKEUP
