"""Conformance checks every attachment kind must pass (the cilium ``testLink`` contract).

:func:`check_link` drives a :class:`~ebpf.link.Link` through its whole protocol: info, pin,
reopen from the pin and by id, update (and back), detach, close twice. :func:`check_attachment`
does the same for the non-link :class:`~ebpf.link.Attachment` kinds. Both take an optional
``attached`` probe, a function telling whether the hook still runs the program as seen from
the kernel (a netlink query, ``BPF_PROG_QUERY``...), so that detaching is checked by effect,
not only by the absence of an error.

Use them from a parametrised test::

    @pytest.mark.parametrize("make", LINK_FACTORIES)
    def test_link_contract(make, bpffs):
        with make() as (link, prog, other, attached):
            check_link(link, prog, other, bpffs, attached=attached)
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from typing import Any

from .. import errors
from .._types import LinkType
from ..link.base import Attachment, Link

__all__ = ["check_attachment", "check_link"]


def _attached_id(link: Link) -> int:
    """What the link holds: a program id, or for struct_ops links the map id."""
    info = link.info()
    if info.type == LinkType.STRUCT_OPS:
        return int(info.raw.struct_ops.map_id)
    return int(info.prog_id)


def _expect(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def check_link(link: Link, program: Any, other_program: Any, bpffs: str, *,
               attached: Callable[[], bool] | None = None) -> None:
    """Check the whole :class:`~ebpf.link.Link` contract on a freshly attached ``link``.

    ``program`` is what ``link`` holds and ``other_program`` a compatible replacement (for
    struct_ops links: :class:`~ebpf.link.struct_ops.StructOps` tables); both need an ``id``.
    ``bpffs`` is a bpffs directory to pin into. Consumes ``link``: it is closed at the end.
    Raises :class:`AssertionError` naming the broken promise.
    """
    name = type(link).__name__
    try:
        # --- identity and info ---------------------------------------------------------------
        _expect(not link.closed and link.fileno() >= 0, f"{name}: a new link is open")
        info = link.info()
        if type(link).link_type is not None:
            _expect(info.type == type(link).link_type,
                    f"{name}: info().type is {info.type!r}, class says {type(link).link_type!r}")
        _expect(info.id > 0 and link.id == info.id, f"{name}: a link has an id")
        _expect(_attached_id(link) == program.id,
                f"{name}: info() names id {_attached_id(link)}, attached {program.id}")
        _expect(repr(link).startswith(f"<{name}"), f"{name}: repr {link!r}")
        if attached is not None:
            _expect(attached(), f"{name}: the hook does not run the program after attach")

        # --- pin, reopen from the pin, unpin -------------------------------------------------
        path = os.path.join(bpffs, f"link_{uuid.uuid4().hex[:12]}")
        link.pin(path)
        _expect(link.pinned_path == path and os.path.exists(path), f"{name}: pin() made {path}")
        again = Link.from_pin(path)
        with again:
            _expect(type(again) is type(link),
                    f"{name}: from_pin() gave {type(again).__name__}, not {name}")
            _expect(again.id == info.id, f"{name}: the pin opens the same link")
            _expect(again.pinned_path == path, f"{name}: from_pin() remembers its path")
        _expect(again.closed, f"{name}: the with block closes the reopened link")
        _expect(link.info().id == info.id, f"{name}: closing another fd leaves this one")
        if attached is not None:
            _expect(attached(), f"{name}: closing a reopened fd must not detach")
        link.unpin()
        _expect(not os.path.exists(path) and link.pinned_path is None, f"{name}: unpin()")
        try:
            link.unpin()
        except ValueError:
            pass
        else:
            raise AssertionError(f"{name}: unpin() of an unpinned link raises ValueError")

        # --- reopen by id --------------------------------------------------------------------
        with Link.from_id(info.id) as by_id:
            _expect(type(by_id) is type(link) and by_id.id == info.id,
                    f"{name}: from_id() opens the same link with the same class")

        # --- update and back -----------------------------------------------------------------
        try:
            link.update(other_program)
        except errors.NotSupportedError:
            _expect(_attached_id(link) == program.id,
                    f"{name}: a refused update leaves the program in place")
        else:
            _expect(_attached_id(link) == other_program.id,
                    f"{name}: update() attached id {_attached_id(link)}, not {other_program.id}")
            _expect(link.program is other_program, f"{name}: update() tracks the program")
            link.update(program, expected=other_program)
            _expect(_attached_id(link) == program.id, f"{name}: update(expected=) swaps back")

        # --- detach --------------------------------------------------------------------------
        link.detach()
        if attached is not None:
            _expect(not attached(), f"{name}: the hook still runs the program after detach()")
        link.detach()  # idempotent
    finally:
        link.close()
    _expect(link.closed, f"{name}: closed after close()")
    link.close()  # twice is fine
    try:
        link.fileno()
    except ValueError:
        pass
    else:
        raise AssertionError(f"{name}: fileno() of a closed link raises ValueError")


def check_attachment(attachment: Attachment, *, attached: Callable[[], bool] | None = None,
                     bpffs: str | None = None) -> None:
    """Check the :class:`~ebpf.link.Attachment` contract: not pinnable, ``detach()`` undoes it
    (seen through ``attached`` when given), ``detach()``/``close()`` idempotent."""
    name = type(attachment).__name__
    try:
        _expect(not attachment.closed, f"{name}: a new attachment is attached")
        if attached is not None:
            _expect(attached(), f"{name}: the hook does not run the program after attach")
        try:
            attachment.pin(os.path.join(bpffs or "/sys/fs/bpf", "never"))
        except errors.NotSupportedError:
            pass
        else:
            raise AssertionError(f"{name}: pin() raises NotSupportedError")
        attachment.detach()
        _expect(attachment.closed, f"{name}: closed after detach()")
        if attached is not None:
            _expect(not attached(), f"{name}: the hook still runs the program after detach()")
        attachment.detach()
    finally:
        with contextlib.suppress(Exception):
            attachment.close()
    attachment.close()
    with attachment:  # a context manager even when detached
        pass
