"""A non-editable install carries the rule files: ``pip install .`` puts them under
``<prefix>/share/graphtool/rules`` and graphtool finds them there."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _source_copy(dest: Path) -> Path:
    """What a wheel is built from, copied, so the build leaves nothing in the checkout."""
    dest.mkdir()
    for name in ("pyproject.toml", "setup.cfg", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    for name in ("graphtool", "rules"):
        shutil.copytree(ROOT / name, dest / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pb", "*.npz", "*.json"))
    shutil.copy(ROOT / "graphtool" / "lang" / "schema.json", dest / "graphtool" / "lang")
    return dest


def _installed_graphtool() -> str:
    """What this interpreter's environment says about graphtool (``pip show``)."""
    shown = subprocess.run([sys.executable, "-m", "pip", "show", "graphtool"],
                           capture_output=True, text=True)
    return shown.stdout


def test_the_wheel_installs_the_rules_and_graphtool_finds_them(tmp_path):
    source = _source_copy(tmp_path / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path / "dist"), str(source)], check=True)
    wheel = glob.glob(str(tmp_path / "dist" / "graphtool-*.whl"))[0]
    names = zipfile.ZipFile(wheel).namelist()
    expected = {str(p.relative_to(ROOT / "rules")) for p in (ROOT / "rules").rglob("*.yaml")}
    shipped = {n.split("/share/graphtool/rules/", 1)[1] for n in names
               if "/share/graphtool/rules/" in n}
    assert expected <= shipped, sorted(expected - shipped)
    assert "graphtool/lang/schema.json" in names

    prefix = tmp_path / "prefix"
    # --ignore-installed: without it pip would first uninstall the graphtool this test
    # suite runs from (make test's editable install), and `make demo` would find no command
    before = _installed_graphtool()
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--ignore-installed",
                    "-q", "--prefix", str(prefix), wheel], check=True)
    assert _installed_graphtool() == before
    site = glob.glob(str(prefix / "lib" / "python*" / "site-packages"))[0]
    env = dict(os.environ, PYTHONPATH=site, PYTHONUSERBASE=str(prefix))
    out = tmp_path / "out.pb"
    # the installed package, away from the checkout: default rules, a real rewrite
    done = subprocess.run(
        [sys.executable, "-c", "import graphtool, sys; from graphtool.convert import "
         "default_rules; from graphtool.targets.opencv import rewrite_for_opencv; "
         "print(graphtool.__file__); print(default_rules()); "
         f"rewrite_for_opencv({str(ROOT / 'fixtures' / 'conv_bn_pool.k3.pb')!r}, {str(out)!r})"],
        cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    package, rules = done.stdout.split()[:2]
    assert package.startswith(site)
    assert rules == str(prefix / "share" / "graphtool" / "rules" / "opencv.yaml")
    assert out.stat().st_size > 0
