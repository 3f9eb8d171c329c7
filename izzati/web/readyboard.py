"""`ReadyBoard`: which server processes of one port have their callback set up."""

from __future__ import annotations

import os

from .._process import mp_context, process_problem

__all__ = ["ReadyBoard"]


class ReadyBoard:
    """Shared memory in which each of `size` server processes says whether its setup is done, so
    any of them can tell a readiness probe about all of them."""

    def __init__(self, size: int) -> None:
        # a slot holds 0 (no process yet), the pid of a process setting up, or minus the pid of a
        # ready one
        self._slots = mp_context().Array("i", max(size, 1))

    def _values(self) -> list[int]:
        return [int(self._slots[index]) for index in range(len(self._slots))]

    def setting_up(self) -> None:
        """This process starts its setup: it takes a slot (a free one, or one of a dead process)."""
        with self._slots.get_lock():
            pid = os.getpid()
            for index, value in enumerate(self._values()):
                if value == 0 or abs(value) == pid or process_problem(abs(value), "") is not None:
                    self._slots[index] = pid
                    return

    def ready(self) -> None:
        """This process finished its setup."""
        with self._slots.get_lock():
            pid = os.getpid()
            for index, value in enumerate(self._values()):
                if value == pid:
                    self._slots[index] = -pid

    def waiting(self) -> list[str]:
        """A line for each server process that is starting or setting up."""
        found = []
        for value in self._values():
            if value == 0:
                found.append("a server process is starting")
            elif value > 0:
                found.append(f"server process (pid {value}) is setting up")
        return found
