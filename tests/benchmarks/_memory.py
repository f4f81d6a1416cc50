"""Sample the resident memory of this process and its children from /proc while a benchmark runs (Linux only)."""
import os
import threading
from pathlib import Path


def memory_bytes(pid: int) -> dict[str, int]:
    "Return VmRSS (all resident pages) and RssAnon (pages not backed by a file) of process `pid`, in bytes."
    sizes = {"VmRSS": 0, "RssAnon": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":")[0]
            if key in sizes: sizes[key] = int(line.split()[1])*1024
    except (FileNotFoundError, ProcessLookupError): pass
    return sizes


def child_pids(pid: int) -> list[int]:
    "Return the ids of the direct children of process `pid`."
    try: return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError: return []


class MemorySampler(threading.Thread):
    """Sample this process and its children every `interval` seconds until `stop()`; keep the start values and peaks.

    Memory-mapped files count in VmRSS while their pages are cached, but the kernel can drop those pages at any time;
    RssAnon is the memory the process itself holds."""
    def __init__(self, interval: float = 0.2):
        super().__init__(daemon=True)
        self.interval, self.stopped, self.pid = interval, threading.Event(), os.getpid()
        self.start_values = memory_bytes(self.pid)
        self.peak = dict(self.start_values)
        self.peak_child = 0

    def run(self):
        while not self.stopped.wait(self.interval):
            for key, value in memory_bytes(self.pid).items(): self.peak[key] = max(self.peak[key], value)
            self.peak_child = max([self.peak_child] + [memory_bytes(c)["VmRSS"] for c in child_pids(self.pid)])

    def stop(self) -> "MemorySampler":
        self.stopped.set()
        self.join()
        return self

    def growth_mib(self, key: str = "RssAnon") -> float:
        return (self.peak[key] - self.start_values[key])/2**20
