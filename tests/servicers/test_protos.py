"""The protos as other languages meet them: stubs generate with no extra flags (each file names
its package for Go, Java, C#, PHP and Ruby), and `buf breaking` compares with the last release's
image, so removing or renumbering a field fails `make check`."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROTOS = ROOT / "protos"
FILES = sorted((PROTOS / "graphrun" / "v1").glob("*.proto"))
BIN = pathlib.Path(sys.executable).parent
BASELINE = re.search(r"^API_BASELINE := (\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
OPTIONS = {
    "csharp_namespace": '"Graphrun.V1"',
    "go_package": '"github.com/graphrun/graphrun/gen/go/graphrun/v1;graphrunv1"',
    "java_multiple_files": "true",
    "java_package": '"dev.graphrun.v1"',
    "php_namespace": '"Graphrun\\\\V1"',
    "ruby_package": '"Graphrun::V1"',
}


def _tool(name: str) -> str:
    path = BIN / name if (BIN / name).exists() else shutil.which(name)
    assert path, f"{name} is missing: pip install the dev dependencies"
    return str(path)


@pytest.mark.parametrize("proto", FILES, ids=lambda p: p.name)
def test_every_file_names_its_package_for_each_language(proto):
    declared = dict(re.findall(r"^option (\w+) = (.+);$", proto.read_text(), re.M))
    assert {k: declared.get(k) for k in OPTIONS} == OPTIONS
    assert declared["java_outer_classname"] == '"' + "".join(w.capitalize() for w in proto.stem.split("_")) + 'Proto"'


def test_java_and_csharp_stubs_generate_with_no_extra_flags(tmp_path):
    (tmp_path / "java").mkdir()
    (tmp_path / "csharp").mkdir()
    generated = subprocess.run([_tool("protoc"), f"-I{PROTOS}", f"--java_out={tmp_path / 'java'}",
                                f"--csharp_out={tmp_path / 'csharp'}", *[str(p.relative_to(PROTOS)) for p in FILES]],
                               capture_output=True, text=True, timeout=120)
    assert generated.returncode == 0, generated.stderr
    java = tmp_path / "java" / "dev" / "graphrun" / "v1"
    assert (java / "RunServiceWaitRequest.java").exists()  # one file per message: java_multiple_files
    assert (java / "RunServiceProto.java").exists()
    assert "namespace Graphrun.V1" in (tmp_path / "csharp" / "RunService.cs").read_text()


def test_buf_breaking_compares_with_the_last_release(tmp_path):
    assert (ROOT / BASELINE).is_file(), f"{BASELINE}: the last release's protos are missing"
    same = subprocess.run([_tool("buf"), "breaking", str(PROTOS), "--against", str(ROOT / BASELINE)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert same.returncode == 0, same.stdout + same.stderr

    changed = tmp_path / "protos"
    shutil.copytree(PROTOS, changed, ignore=shutil.ignore_patterns("releases"))
    run_proto = changed / "graphrun" / "v1" / "run.proto"
    text = run_proto.read_text()
    assert "  string thread_id = 2;\n" in text
    run_proto.write_text(text.replace("  string thread_id = 2;\n", "  string thread_id = 99;\n", 1))
    broken = subprocess.run([_tool("buf"), "breaking", str(changed), "--against", str(ROOT / BASELINE)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert broken.returncode != 0
    assert "thread_id" in broken.stdout + broken.stderr
