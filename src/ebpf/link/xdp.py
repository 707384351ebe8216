"""XDP: run a program on every frame a network device receives, before the stack sees it.

Two ways to attach, one function (:func:`attach_xdp`):

* a ``bpf_link`` (``BPF_LINK_CREATE`` with ``BPF_XDP``, kernel >= 5.9) -> :class:`XDPLink`:
  pinnable, updatable, owned by its fd, and no other process can replace it by accident;
* ``IFLA_XDP`` over rtnetlink (kernel >= 4.8) -> :class:`XDPAttachment`: the fallback when the
  kernel has no XDP links, and the only way to replace a program atomically *if it is the
  one expected* (``XDP_FLAGS_REPLACE``, >= 5.7) when that program was attached through netlink.

Example::

    prog = ebpf.Program.load(ebpf.ProgramType.XDP, [asm.mov(R0, 1), asm.exit()])  # XDP_DROP
    with ebpf.link.attach_xdp(prog, "veth0", mode=ebpf.XDPMode.GENERIC):
        ...                                   # detached when the block ends
"""

from __future__ import annotations

import contextlib
import errno as _errno
from typing import Literal, final, overload

from .. import errors
from .._programs import Program
from .._sys import netlink
from .._sys.fd import FD
from .._types import AttachType, LinkType, ProgramType, XDPMode
from .._uapi import _defines as _d
from .base import (
    Attachment,
    Link,
    check_program_type,
    current_netns,
    link_create,
    netns_arg,
    resolve_interface,
)

__all__ = ["XDPAttachment", "XDPLink", "attach_xdp"]

Method = Literal["link", "netlink"]


@final
class XDPLink(Link):
    """An XDP program attached through a ``bpf_link`` (``BPF_LINK_TYPE_XDP``, kernel >= 5.9).

    While the link exists, netlink cannot replace or remove the program (``EBUSY``).
    :meth:`update` swaps the program atomically; :meth:`detach` removes it even if pinned.
    """

    __slots__ = ()
    link_type = LinkType.XDP

    @property
    def ifindex(self) -> int:
        """The interface the program is attached to (0 once detached)."""
        return int(self.info().raw.xdp.ifindex)


@final
class XDPAttachment(Attachment):
    """An XDP program attached through rtnetlink ``IFLA_XDP`` (no kernel link object).

    It stays attached until :meth:`detach` (or ``close()``/the end of a ``with`` block), and
    detaching removes it only while it is still the program attached (``XDP_FLAGS_REPLACE``
    with the expected fd), so a program someone else put there since is left alone.
    Not pinnable. Built by :func:`attach_xdp`.
    """

    __slots__ = ("_netns", "_prog_id", "ifindex", "mode")

    def __init__(self, program: Program, ifindex: int, mode: XDPMode, netns: FD) -> None:
        super().__init__(program)
        self.ifindex = ifindex
        self.mode = mode
        self._netns = netns
        self._prog_id = program.id

    def update(self, program: Program, *, expected: Program | None = None) -> None:
        """Replace the program atomically, only if ``expected`` (default: ours) is attached."""
        check_program_type(program, ProgramType.XDP, hook="XDP")
        if self.closed:
            raise ValueError("XDP attachment is detached")
        old = expected if expected is not None else self.program
        assert old is not None
        netlink.xdp_attach(self.ifindex, program.fileno(), self.mode.flags(),
                           expected_fd=old.fileno(), netns=netns_arg(self._netns))
        self.program = program
        self._prog_id = program.id

    def _detach(self) -> None:
        try:
            prog = self.program
            if prog is not None and not prog.closed:
                netlink.xdp_detach(self.ifindex, self.mode.flags(), expected_fd=prog.fileno(),
                                   netns=netns_arg(self._netns))
            else:  # the program object was closed: compare ids instead
                info = netlink.xdp_query(self.ifindex, netns=netns_arg(self._netns))
                if self._prog_id in (info.prog_id, info.skb_prog_id, info.drv_prog_id,
                                     info.hw_prog_id):
                    netlink.xdp_detach(self.ifindex, self.mode.flags(),
                                       netns=netns_arg(self._netns))
        except errors.SyscallError as e:
            # EEXIST: another program replaced ours; ENODEV/EINVAL: the device is gone.
            if e.errno not in (_errno.EEXIST, _errno.ENODEV, _errno.EINVAL):
                raise
        except ValueError:  # interface deleted meanwhile
            pass
        finally:
            self._netns.close()

    def __repr__(self) -> str:
        state = "detached" if self.closed else f"ifindex={self.ifindex}"
        return f"<XDPAttachment {self.mode.name} {state}>"


def _have_xdp_link() -> bool:
    from .. import features

    try:
        features.have_link_type(LinkType.XDP)
    except errors.NotSupportedError:
        return False
    except errors.ProbeError:
        return True  # inconclusive (e.g. no permission to probe): just try
    return True


@overload
def attach_xdp(program: Program, interface: int | str, *, mode: XDPMode = ...,
               replace: Program | None = ..., method: Literal["link"]) -> XDPLink: ...
@overload
def attach_xdp(program: Program, interface: int | str, *, mode: XDPMode = ...,
               replace: Program | None = ..., method: Literal["netlink"]) -> XDPAttachment: ...
@overload
def attach_xdp(program: Program, interface: int | str, *, mode: XDPMode = ...,
               replace: Program | None = ..., method: None = ...) -> XDPLink | XDPAttachment: ...


def attach_xdp(program: Program, interface: int | str, *, mode: XDPMode = XDPMode.DEFAULT,
               replace: Program | None = None,
               method: Method | None = None) -> XDPLink | XDPAttachment:
    """Attach an XDP program to a network interface (a name or an index).

    ``mode`` picks the XDP flavour: :attr:`~ebpf.XDPMode.GENERIC` works on every device,
    :attr:`~ebpf.XDPMode.NATIVE` needs driver support (``EOPNOTSUPP`` otherwise, e.g. on
    ``lo``), :attr:`~ebpf.XDPMode.OFFLOAD` needs a program loaded for that device
    (``Program.load(..., ifindex=)``) and an offload-capable NIC; ``DEFAULT`` lets the kernel
    use native mode when the driver has it, else generic.

    ``method`` chooses the mechanism; by default a bpf_link (:class:`XDPLink`, kernel >= 5.9)
    and, **when the kernel has no XDP links, a netlink attachment** (:class:`XDPAttachment`,
    kernel >= 4.8) without error. ``replace=old`` swaps ``old`` for ``program`` atomically and
    fails with ``EEXIST`` unless ``old`` is the attached program; it works on netlink
    attachments only (a program attached through a link is replaced with
    ``link.update(program, expected=old)``), so it implies ``method="netlink"``.

    Errors: :class:`ValueError` for a non-XDP program or an unknown interface (before any
    syscall); :class:`~ebpf.errors.BusyError` (``EBUSY``) when a link already holds the
    interface, or when netlink is asked to replace a link; ``EEXIST`` when a program is
    attached in another mode.

    Kernel: ``BPF_PROG_TYPE_XDP`` >= 4.8; ``BPF_LINK_TYPE_XDP`` >= 5.9.
    """
    check_program_type(program, ProgramType.XDP, hook="XDP")
    if not isinstance(mode, XDPMode):
        raise TypeError(f"mode must be an ebpf.XDPMode, not {mode!r}")
    if method not in (None, "link", "netlink"):
        raise ValueError(f"method must be 'link', 'netlink' or None, not {method!r}")
    if replace is not None:
        check_program_type(replace, ProgramType.XDP, hook="XDP")
        if method == "link":
            raise ValueError("replace= works through netlink only; use link.update(prog, "
                             "expected=old) for a program attached through a link")
        method = "netlink"
    ifindex = resolve_interface(interface)
    if method is None:
        method = "link" if _have_xdp_link() else "netlink"
    if method == "link":
        fd = link_create(program, ifindex, AttachType.XDP, mode.flags())
        return XDPLink(fd, program)
    ns = current_netns()
    try:
        netlink.xdp_attach(ifindex, program.fileno(), mode.flags(),
                           expected_fd=None if replace is None else replace.fileno(),
                           netns=None)
    except BaseException:
        ns.close()
        raise
    try:
        return XDPAttachment(program, ifindex, mode, ns)
    except BaseException:
        with contextlib.suppress(Exception):
            netlink.xdp_detach(ifindex, mode.flags())
        ns.close()
        raise


# Keep the flag table honest: the public mode enum and the netlink flags must agree.
assert XDPMode.GENERIC.flags() == _d.XDP_FLAGS_SKB_MODE
