"""Fuzz suite setup: one Hypothesis profile for every reader, and the count of inputs each reader was given.

The counts are printed at the end of the session (``fuzz inputs per reader``), whatever ``-r`` options
the run has, so a run shows how much each reader was exercised.
"""

from _fuzz_helpers import INPUTS


def pytest_terminal_summary(terminalreporter) -> None:
    if not INPUTS:
        return
    terminalreporter.section("fuzz inputs per reader")
    for reader, count in sorted(INPUTS.items()):
        terminalreporter.write_line(f"{reader:<40} {count:>5}")
    terminalreporter.write_line(f"{'total':<40} {sum(INPUTS.values()):>5}")
