"""The eBPF registers R0-R10."""

from __future__ import annotations

import enum

__all__ = ["R0", "R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R9", "R10", "RFP", "Register"]


class Register(enum.IntEnum):
    """An eBPF register.

    R0 holds return values, R1-R5 arguments (clobbered by calls), R6-R9 are callee-saved,
    R10 is the read-only frame pointer.
    """

    R0 = 0
    R1 = 1
    R2 = 2
    R3 = 3
    R4 = 4
    R5 = 5
    R6 = 6
    R7 = 7
    R8 = 8
    R9 = 9
    R10 = 10

    def __repr__(self) -> str:
        return self.name

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


R0 = Register.R0
R1 = Register.R1
R2 = Register.R2
R3 = Register.R3
R4 = Register.R4
R5 = Register.R5
R6 = Register.R6
R7 = Register.R7
R8 = Register.R8
R9 = Register.R9
R10 = Register.R10
#: The frame pointer, R10.
RFP = Register.R10
