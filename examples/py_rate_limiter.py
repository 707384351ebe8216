"""A token-bucket rate limiter in Python (XDP): `rate` packets per second with bursts of
`burst`; state in globals (bpf.var) that Python can read and rewind. Run on test packets.

One bucket for the whole interface, updated without a lock: under load on several CPUs a
few packets more than the rate may pass (a per-CPU or spin-locked bucket fixes that).

Run as root: python examples/py_rate_limiter.py
"""

import sys

from ebpf import bpf
from ebpf.bpf import u64

rate = bpf.const(u64, 10)    # tokens per second
burst = bpf.const(u64, 5)    # bucket size
tokens = bpf.var(u64)
last_ns = bpf.var(u64)
dropped = bpf.var(u64)


@bpf.xdp
def limiter(ctx: bpf.XDP) -> int:
    global tokens, last_ns, dropped
    now = bpf.ktime_get_ns()
    t = tokens
    if last_ns == 0:
        t = burst
    else:
        t = t + (now - last_ns) * rate // 1000000000
        if t > burst:  # noqa: PLR1730 (min() is not in the compiled subset yet)
            t = burst
    last_ns = now
    if t == 0:
        tokens = 0
        dropped += 1
        return bpf.XDP_DROP
    tokens = t - 1
    return bpf.XDP_PASS


def main() -> int:
    frame = bytes(64)
    with bpf.load(limiter) as coll:
        first = [coll.limiter.test_run(frame).retval for _ in range(8)]
        v = coll.variables
        v["last_ns"].set(v["last_ns"].get() - 1_000_000_000)  # one second later: 10 tokens
        after = [coll.limiter.test_run(frame).retval for _ in range(7)]
        drops = v["dropped"].get()
    print("burst: ", first)
    print("refill:", after)
    p, d = bpf.XDP_PASS, bpf.XDP_DROP
    ok = first == [p] * 5 + [d] * 3 and after == [p] * 5 + [d] * 2 and drops == 5
    print(f"dropped {drops}: {'ok' if ok else 'UNEXPECTED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
