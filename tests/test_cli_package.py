"""The command line is a leaf: `--help` does not import torch, and no library module imports trainfree.cli."""
import ast
import subprocess
import sys
from pathlib import Path

import trainfree

PACKAGE = Path(trainfree.__file__).parent


def test_help_does_not_import_torch():
    code = ("import sys\nfrom trainfree.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "False"


def test_no_library_module_imports_the_cli():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "cli" or rel.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{rel}: {n}" for n in names if n == "trainfree.cli" or n.startswith("trainfree.cli.")]
    assert not offenders, offenders


def test_seed_means_the_model_seed_in_every_command():
    from trainfree.cli import build_parser

    parser = build_parser()
    for command in (["score", "--benchmark", "b", "--output", "o"], ["search", "--space", "nasbench-nlp"],
                    ["search-eval", "--benchmark", "b"], ["reproduce", "rnn"],
                    ["report", "--benchmark", "b", "--output", "o"]):
        args = parser.parse_args([*command, "--seed", "3"])
        assert args.seed == 3, command
        assert parser.parse_args([*command, "--model-seed", "4"]).seed == 4, command
