"""In-program libraries: code generators that emit verifier-safe instruction sequences.

Everything here is pure (no kernel calls) and built on :mod:`ebpf.asm`:

* :mod:`ebpf.lib.net` - packet parsing, bounds checks, byte order, checksums, NAT
* :mod:`ebpf.lib.memory` - zero, set and copy stack or map memory
* :mod:`ebpf.lib.time` - clocks, jiffies, pseudo-random numbers
* :mod:`ebpf.lib.maps` - lookups, lookup-or-init, counters
* :mod:`ebpf.lib.ringbuf` - reserve/submit/discard/output
* :mod:`ebpf.lib.rate_limit` - a token bucket per key
* :mod:`ebpf.lib.structs` - record layouts shared by programs and Python
* :mod:`ebpf.lib.helpers` - one typed wrapper per common helper
* :mod:`ebpf.lib.patterns` - current pid/uid/comm, filters, printk, spin locks, redirects
* :mod:`ebpf.lib.histogram` - log2/linear histograms in maps, bcc-identical printers

:func:`call` places helper arguments without clobbering them; :class:`fp` is a stack
pointer argument (``fp(-16)`` = ``r10 - 16``).
"""

from __future__ import annotations

from ._call import Arg, MapRef, call, fp, parallel_move, set_reg, stack_value

__all__ = ["Arg", "MapRef", "call", "fp", "parallel_move", "set_reg", "stack_value"]
