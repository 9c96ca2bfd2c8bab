"""The code blocks of docs/walkthrough.md and README.md run, in order, so they cannot rot.

Each document runs in its own temp dir, where `fixtures/`, `rules/` and
`examples/` of the checkout are linked (the README's paths are relative to
it), with `graphtool` and this test's Python first on PATH:

- a ```python block whose first line is `# NAME.py` is saved as NAME.py
  (a file the reader is told to create);
- any other ```python block runs as a script with this interpreter;
- a ```sh block runs with `bash -e`.
Every block must exit 0.  README.md's ```sh blocks (make targets) are not run.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

BLOCK = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.S | re.M)
SAVE_AS = re.compile(r"#\s*([\w./-]+\.py)\s*$")
LINKED = ("fixtures", "rules", "examples")
DOCUMENTS = {"docs/walkthrough.md": ("python", "sh"), "README.md": ("python",)}


def code_blocks(path: Path, languages) -> list[tuple[str, str]]:
    """(language, code) of each fenced block in a language we run, in document order."""
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(path.read_text(encoding="utf-8"))
            if m.group(1) in languages]


def shell_env(tmp_path: Path) -> dict:
    """PATH with `graphtool` (as the console script runs it) and this Python in front."""
    bin_dir = tmp_path / ".bin"
    bin_dir.mkdir()
    shim = bin_dir / "graphtool"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m graphtool "$@"\n')
    shim.chmod(0o755)
    python = bin_dir / "python"
    python.symlink_to(sys.executable)
    path = os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, PATH=path, PYTHONPATH=pythonpath, TF_CPP_MIN_LOG_LEVEL="2")


def test_block_parser_sees_every_kind(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n```python\n# mod.py\nX = 1\n```\n```sh\necho hi\n```\n"
                    "```text\nnot code\n```\n```python\nimport mod\n```\n")
    blocks = code_blocks(page, ("python", "sh"))
    assert [lang for lang, _ in blocks] == ["python", "sh", "python"]
    assert SAVE_AS.match(blocks[0][1].splitlines()[0]).group(1) == "mod.py"
    assert SAVE_AS.match(blocks[2][1].splitlines()[0]) is None


@pytest.mark.parametrize("document", list(DOCUMENTS))
def test_document_code_runs(document, tmp_path):
    blocks = code_blocks(ROOT / document, DOCUMENTS[document])
    assert blocks, f"{document} has no code blocks to run"
    for name in LINKED:
        (tmp_path / name).symlink_to(ROOT / name)
    env = shell_env(tmp_path)
    for number, (language, code) in enumerate(blocks, 1):
        first = code.splitlines()[0] if code.strip() else ""
        save_as = SAVE_AS.match(first) if language == "python" else None
        if save_as:
            (tmp_path / save_as.group(1)).write_text(code)
            continue
        if language == "python":
            script = tmp_path / f"block_{number}.py"
            script.write_text(code)
            command = [sys.executable, str(script)]
        else:
            command = ["bash", "-e", "-c", code]
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, (
            f"{document} block {number} ({language}) exited {done.returncode}:\n{code}\n"
            f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}")
