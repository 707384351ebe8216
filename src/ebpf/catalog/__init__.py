"""Catalogs and metadata: what the kernel offers and where to find it.

* :mod:`.helpers` - helper categories, minimum kernel per helper, search, a registry of
  custom helpers
* :mod:`.tracepoints` - tracepoint categories, listing and existence (tracefs)
* :mod:`.lsm` - the LSM hooks of the running kernel (``bpf_lsm_*`` in its BTF)
* :mod:`.cgroup` - current cgroup, children, existence, cgroup ids
* :mod:`.arch` - supported architectures and ``pt_regs`` offsets, s390x and ppc64le too

::

    from ebpf.catalog import helpers
    helpers.info("loop").min_kernel            # (5, 17)
    helpers.search("ringbuf")
"""

from __future__ import annotations

from . import arch, cgroup, helpers, lsm, tracepoints

__all__ = ["arch", "cgroup", "helpers", "lsm", "tracepoints"]
