"""Run every line of the quickstart (docs/quickstart.md), in order, and print each one's wall time.

The lines are read from the first ```bash block under "## Quickstart" and run one after another (later
lines read what earlier ones wrote) in a fresh temporary directory, with ``TRAINFREE_STORE`` pointing
at a fresh store there, so nothing touches your own store. ``trainfree`` runs as
``python -m trainfree`` with this interpreter (the same program). The quickstart's time figures come
from this script (it prints them; they are copied into docs/quickstart.md):

    python benchmarks/quickstart_times.py            # every line as written (about 15-25 min on 2 cores)
    python benchmarks/quickstart_times.py --quick    # the documented quick substitution (see QUICK)

``--quick`` makes each line small (the newcomer test runs the quickstart this way): ``--limit``,
``--budget`` and ``--seeds`` values are lowered (QUICK), and the commands that build models get
tiny models on short inputs, in-process (QUICK_MODELS); nothing else of a line changes.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: --quick: flag -> the value it gets; the sub-commands that build models get QUICK_MODELS (tiny models on
#: short inputs, scored in-process) unless the line sets them; search-eval gets a budget its few
#: architectures can meet
QUICK = {"--limit": "8", "--budget": "4", "--seeds": "2"}
BUILDS_MODELS = {"score", "reproduce", "search", "search-eval"}
QUICK_MODELS = {"--size": "tiny", "--seq-len": "16", "--batch-size": "4", "--jobs": "1"}


def quickstart_lines(readme: Path = ROOT / "docs" / "quickstart.md") -> list[str]:
    """The quickstart's command lines, comments stripped."""
    text = readme.read_text(encoding="utf-8")
    section = text.split("## Quickstart", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    lines = []
    for line in block.splitlines():
        command = re.sub(r"\s+#.*$", "", line).strip()  # a comment starts with " #" (not lts:...#SETTING)
        if command:
            lines.append(command)
    return lines


def quick(command: str) -> str:
    """The quick substitution of one line: small --limit/--budget/--seeds, tiny models."""
    words = shlex.split(command)
    for i, word in enumerate(words[:-1]):
        if word in QUICK:
            words[i + 1] = QUICK[word]
    if len(words) > 1 and words[1] in BUILDS_MODELS:
        words += [f"{flag}={value}" for flag, value in QUICK_MODELS.items() if flag not in words]
    if len(words) > 1 and words[1] == "search-eval" and "--budget" not in words:
        words.append(f"--budget={QUICK['--budget']}")
    return shlex.join(words)


def _child_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # every waited-for descendant, pool workers too
    return usage.ru_utime + usage.ru_stime


def run_line(command: str, cwd: Path, env: dict) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, CPU seconds of the command and its workers, the finished process)."""
    words = shlex.split(command)
    if words[0] != "trainfree":
        raise SystemExit(f"not a trainfree command: {command}")
    cpu, start = _child_cpu(), time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "trainfree", *words[1:]], cwd=cwd, env=env, capture_output=True,
                          text=True)
    return time.perf_counter() - start, _child_cpu() - cpu, proc


def fmt(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--quick", action="store_true", help="the documented quick substitution (QUICK)")
    parser.add_argument("--readme", type=Path, default=ROOT / "docs" / "quickstart.md")
    parser.add_argument("--keep", type=Path, default=None, help="run in this directory instead (kept)")
    args = parser.parse_args(argv)
    lines = quickstart_lines(args.readme)
    with tempfile.TemporaryDirectory(prefix="trainfree-quickstart-") as tmp:
        cwd = args.keep or Path(tmp)
        cwd.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, TRAINFREE_STORE=str(cwd / "store.sqlite"))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        failed = 0
        total = total_cpu = 0.0
        print(f"{'wall':>12}  {'CPU':>12}  status   command (CPU: the command and its workers; wall time "
              f"grows with the machine's load, CPU time much less)", flush=True)
        for line in lines:
            command = quick(line) if args.quick else line
            seconds, cpu, proc = run_line(command, cwd, env)
            total += seconds
            total_cpu += cpu
            status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
            print(f"{fmt(seconds):>12}  {fmt(cpu):>12}  {status:7s}  {command}", flush=True)
            if proc.returncode != 0:
                failed += 1
                print("    " + (proc.stderr.strip().splitlines() or ["(no message)"])[-1], flush=True)
        load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
        print(f"{fmt(total):>12}  {fmt(total_cpu):>12}  total, {len(lines)} lines, {failed} failed "
              f"(python {sys.version.split()[0]}, {os.cpu_count()} cores visible{load})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
