"""benchmark_model's command line, and running a command as an argument list with a time-out."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DELEGATE_FLAGS = {
    "cpu": [],  # the runtime's default: XNNPACK for the ops it supports, the built-in kernels else
    "xnnpack": ["--use_xnnpack=true"],
    "gpu": ["--use_gpu=true"],
    "nnapi": ["--use_nnapi=true"],
}


@dataclass(frozen=True)
class BenchmarkSettings:
    """How benchmark_model (or the LiteRT timing loop) runs one file."""

    threads: int
    warmup_runs: int
    runs: int
    delegate: str = "cpu"
    op_profiling: bool = False
    memory_report: bool = False
    extra_flags: tuple[str, ...] = ()

    @classmethod
    def from_config(
        cls, profiling: Mapping[str, Any], section: Mapping[str, Any], where: str
    ) -> BenchmarkSettings:
        """Shared settings of ``device_profiling`` with the target section's threads, delegate and
        extra flags; a bad value is an error naming ``where`` (the section)."""
        delegate = str(section.get("delegate", "cpu")).lower()
        if delegate not in DELEGATE_FLAGS:
            raise ValueError(f"{where}.delegate: {delegate!r} is not one of {list(DELEGATE_FLAGS)}")
        settings = cls(
            threads=int(section.get("threads", 1)),
            warmup_runs=int(profiling.get("warmup_runs", 5)),
            runs=int(profiling.get("runs", 30)),
            delegate=delegate,
            op_profiling=bool(profiling.get("op_profiling", False)),
            memory_report=bool(profiling.get("memory_report", False)),
            extra_flags=tuple(str(flag) for flag in section.get("extra_flags") or ()),
        )
        if settings.threads < 1 or settings.runs < 1 or settings.warmup_runs < 0:
            raise ValueError(
                f"{where}: threads and runs must be >= 1 and warmup_runs >= 0, got "
                f"{settings.threads}, {settings.runs}, {settings.warmup_runs}"
            )
        return settings

    def flags(self, graph: str) -> list[str]:
        """benchmark_model's arguments for ``graph``: exactly ``warmup_runs`` and ``runs`` runs
        (``--warmup_min_secs=0 --min_secs=0``: no extra runs to fill a minimum duration)."""
        return [
            f"--graph={graph}",
            f"--num_threads={self.threads}",
            f"--warmup_runs={self.warmup_runs}",
            "--warmup_min_secs=0",
            f"--num_runs={self.runs}",
            "--min_secs=0",
            *DELEGATE_FLAGS[self.delegate],
            *(["--enable_op_profiling=true"] if self.op_profiling else []),
            *(["--report_peak_memory_footprint=true"] if self.memory_report else []),
            *self.extra_flags,
        ]


class CommandTimeoutError(RuntimeError):
    """A command did not finish within its time-out; ``output`` is what it printed until then."""

    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        self.output = output


def _text(value: bytes | str | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value or ""


def run_command(args: Sequence[str], *, timeout: float, what: str) -> tuple[int, str]:
    """Exit status and output (stdout and stderr interleaved) of ``args``; raises
    :class:`CommandTimeoutError` naming ``what`` past ``timeout`` seconds, and FileNotFoundError
    for a missing executable."""
    try:
        result = subprocess.run(
            list(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise CommandTimeoutError(
            f"{what} did not finish within {timeout:g} s", _text(error.stdout)
        ) from None
    return result.returncode, result.stdout
