"""A pytest plugin for the guest: run only the tests named in ``$EBPF_VMTEST_SELECT``.

The file holds one entry per line: a test's node id, or a test file's path (every test in it).
Deselecting at collection time, instead of passing node ids on the command line, keeps the run
going when an id is not collected in the guest (a parametrization that depends on the kernel,
a test renamed since the host run): pytest would refuse the whole command line for one unknown
id. The plugin prints how many selected ids it did not find.
"""

from __future__ import annotations

import os

import pytest


def _entries() -> tuple[set[str], set[str]] | None:
    path = os.environ.get("EBPF_VMTEST_SELECT")
    if not path:
        return None
    ids: set[str] = set()
    files: set[str] = set()
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            (ids if "::" in line else files).add(line)
    return ids, files


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    sel = _entries()
    if sel is None:
        return
    ids, files = sel
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    seen: set[str] = set()
    for item in items:
        if item.nodeid in ids or item.nodeid.split("::", 1)[0] in files:
            keep.append(item)
            seen.add(item.nodeid)
        else:
            drop.append(item)
    items[:] = keep
    if drop:
        config.hook.pytest_deselected(items=drop)
    missing = ids - seen
    print(f"\nvmtest: selected {len(keep)} tests ({len(files)} whole files, {len(ids)} ids, "
          f"{len(missing)} ids not collected here)")
    for nodeid in sorted(missing)[:20]:
        print(f"vmtest:   not collected: {nodeid}")
