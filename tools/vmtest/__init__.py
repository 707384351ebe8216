"""Run commands, and the kernel test suite, on other kernels in a qemu VM.

``python -m tools.vmtest --help`` from the repository root. See the README's development
section; :mod:`tools.vmtest.kernel` fetches and prepares a kernel, :mod:`tools.vmtest.vm`
boots it, :mod:`tools.vmtest.suite` picks the tests and reads their results,
:mod:`tools.vmtest.table` writes the README's kernel table.
"""
