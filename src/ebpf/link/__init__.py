"""Attaching programs to kernel hooks: one ``attach_*`` function and one class per hook.

Every attachment is a context manager with ``detach()``/``close()``; bpf_link based ones are
also pinnable (:class:`Link`). See each function for the minimum kernel and its fallback.
"""

from __future__ import annotations

from .base import Attachment as Attachment
from .base import Link as Link
from .base import LinkInfo as LinkInfo
from .base import link_create as link_create

__all__ = ["Attachment", "Link", "LinkInfo", "link_create"]
