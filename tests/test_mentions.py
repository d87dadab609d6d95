"""README and the docs mention only paths that exist and gpunn commands and options the parser has."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
import mentions  # noqa: E402


def test_every_mentioned_path_and_option_exists():
    problems = mentions.check(ROOT)
    assert not problems, "\n".join(f"{p.document}:{p.line}: {p.message}" for p in problems)


def test_the_check_reads_what_the_docs_mention():
    """The check finds paths and commands where the docs write them (else it would pass on anything)."""
    found_paths, found_commands = set(), []
    tracked = mentions.tracked_files(ROOT)
    top = {t.split("/")[0] for t in tracked}
    for document in mentions.documents(ROOT):
        for _, snippet, whole in mentions.code_lines(document):
            found_paths.update(mentions.path_candidates(snippet, whole, top))
            found_commands += [m.group(0) for m in mentions.COMMAND.finditer(snippet)]
    assert {"kernels/activations.py", "gpunn/nn/activations.py", "bench/GPU.md", "docs/build.py",
            "tests/kernels/test_NAME_kernels.py"} <= found_paths
    assert any("--model convnet" in c for c in found_commands) and any(c.startswith("gpunn lesson") for c in found_commands)


@pytest.fixture
def repo(tmp_path):
    """A small repository with a README: the check runs on it as on gpunn's."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "real.py").write_text("")
    (tmp_path / "docs").mkdir()
    return tmp_path


def problems_in(repo, readme: str) -> list[str]:
    (repo / "README.md").write_text(readme)
    return [p.message for p in mentions.check(repo)]


def test_missing_paths_are_found(repo):
    assert problems_in(repo, "See `pkg/real.py` and [the page](pkg/real.py).\n") == []
    assert problems_in(repo, "See `pkg/gone.py`.\n") == ["`pkg/gone.py` does not exist"]
    assert problems_in(repo, "A link [here](docs/gone.rst).\n") == ["`docs/gone.rst` does not exist"]
    assert problems_in(repo, "```bash\npython pkg/gone.py   # runs it\n```\n") == ["`pkg/gone.py` does not exist"]
    assert problems_in(repo, "`gone.py` alone\n") == ["`gone.py` does not exist"]
    assert problems_in(repo, "`pkg/NAME.py` is any module; `pkg/NAME_x.py` is none\n") == ["`pkg/NAME_x.py` does not exist"]
    assert problems_in(repo, "NumPy/CuPy in `NumPy/CuPy` prose, and `runs/train/checkpoint.npz` written\n") == []


def test_commands_are_checked_against_the_real_parser(repo):
    assert problems_in(repo, "`gpunn train --epochs 5 --lr 1e-3` and `gpunn lesson gates --out x`\n") == []
    assert problems_in(repo, "`gpunn train --epoch 5`\n") == ["`gpunn train --epoch`: no such option"]
    assert problems_in(repo, "```\nmpirun -n 2 gpunn train --distributed --gpus 2\n```\n") == \
        ["`gpunn train --gpus`: no such option"]
    assert problems_in(repo, "`gpunn fit`\n") == ["`gpunn fit`: no such command (gpunn has train, knn, info, lesson)"]
    assert problems_in(repo, "`gpunn lesson gate`\n") == ["`gpunn lesson gate`: no such lesson"]
    assert problems_in(repo, "`gpunn knn --ks 1 3 --data-dir d`, `gpunn info`, import gpunn as gn\n") == []
