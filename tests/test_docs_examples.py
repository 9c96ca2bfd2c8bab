"""Every YAML example in docs/rules.md and docs/tutorial.md is a loadable rule file, and
the tutorial's commands run and print what the tutorial shows."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from graphtool.rewrite import load_rules

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["docs/rules.md", "docs/tutorial.md"]
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_FILE = re.compile(r"<!-- file: (\S+) -->\s*$")


def blocks(doc: str):
    """(language, text, file name from a preceding <!-- file: ... --> comment, line)."""
    text = (ROOT / doc).read_text()
    for m in _FENCE.finditer(text):
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        named = _FILE.match(before)
        yield m.group(1), m.group(2), named.group(1) if named else None, \
            text[:m.start()].count("\n") + 1


def _workspace(tmp_path) -> Path:
    """A folder where docs/ examples find ../rules, ../fixtures and fixtures/ like in the repo."""
    for name in ("rules", "fixtures"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "fixtures").symlink_to(ROOT / "fixtures")
    return tmp_path / "docs"


def _register_doc_helpers() -> None:
    for lang, text, _, _ in blocks("docs/rules.md"):
        if lang == "python" and "@register_function" in text:
            exec(compile(text, "docs/rules.md", "exec"), {})


def _yaml_examples():
    for doc in DOCS:
        files: dict[str, str] = {}     # the tutorial's files as written so far
        for lang, text, name, line in blocks(doc):
            if lang != "yaml":
                continue
            if name:
                files[name] = text
            yield pytest.param(dict(files), name or "example.yaml", text, id=f"{doc}:{line}")


YAML = list(_yaml_examples())


@pytest.mark.parametrize("files, name, text", YAML)
def test_yaml_example_loads(tmp_path, files, name, text):
    _register_doc_helpers()
    folder = _workspace(tmp_path)
    for other, content in files.items():
        (folder / other).write_text(content)
    path = folder / name
    path.write_text(text)
    rules = load_rules(path)
    assert rules.rules


def test_docs_have_examples():
    assert len(YAML) >= 15


def test_tutorial_commands_run_as_shown(tmp_path):
    import tensorflow  # noqa: F401 - a real dependency: missing it fails
    folder = _workspace(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    pending_output = None
    ran = 0
    for lang, text, name, line in blocks("docs/tutorial.md"):
        if name:
            (folder / name).write_text(text)
        elif lang == "sh":
            command, _, expect = text.strip().partition("#")
            code = int(expect.split()[-1]) if "exit" in expect else 0
            args = shlex.split(command)
            assert args[0] == "graphtool"
            result = subprocess.run([sys.executable, "-m", "graphtool", *args[1:]], cwd=folder,
                                    env=env, capture_output=True, text=True)
            assert result.returncode == code, f"line {line}: {result.stdout}{result.stderr}"
            pending_output = (line, result.stdout)
            ran += 1
        elif lang == "text" and pending_output is not None:
            at, stdout = pending_output
            for expected in text.splitlines():
                assert expected.rstrip() in stdout, f"tutorial line {at}: {expected!r} not in:\n{stdout}"
            pending_output = None
    assert ran >= 6
