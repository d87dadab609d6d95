"""What README and the docs mention exists: every repository path, every ``gpunn`` subcommand, option and lesson.

Read from the text (``python docs/_ext/mentions.py`` lists what it finds wrong):

- a **path** is a code span (```x``` in Markdown, ````x```` in reST), a Markdown link's target or a
  word of a code block that contains a ``/`` or ends in a file suffix (``kernels/op.py``,
  ``tests/test_cli.py``, ``digits.csv.gz``). It must exist from the repository's root, or from the
  document's own folder (relative links). A name without a folder (``conftest.py``) must exist
  somewhere in the repository. Upper-case placeholders stand for any name
  (``tests/kernels/test_NAME_kernels.py`` needs at least one match). What gpunn or a command shown
  writes (``runs/train/...``, ``history.json``) is in :data:`WRITTEN`.
- a **command** is ``gpunn SUBCOMMAND ...`` anywhere in a code span or block: the subcommand, each
  ``--option`` and a lesson's name are checked against the real argparse parser
  (:func:`gpunn.cli.parser`) and :data:`gpunn.lessons.LESSONS`.

The docs build runs the same check (``setup``) and fails on what it finds; ``tests/test_mentions.py``
runs it too.
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ["README.md", "bench/GPU.md", "docs/**/*.rst"]
SKIP = ["docs/_build/**", "docs/_generated/**", "docs/api/generated/**"]
SUFFIXES = ("py", "rst", "md", "json", "toml", "cff", "yaml", "yml", "png", "svg", "csv", "gz", "npz", "txt", "cfg",
            "ipynb", "css", "sh")
# written by gpunn or by a command the docs show, not kept in the repository
WRITTEN = ["runs/**", "runs", "lessons/**", "lessons", "docs/_build/**", "_build/**", "docs/_generated/**", "history.json",
           "checkpoint.npz", "curves.png", "graph.svg", "f.svg", "*.json", ".venv/**", "OUT/*"]
PLACEHOLDERS = ("NAME", "SUITE", "DIR", "OUT", "FILE")
LINKS = re.compile(r"\]\(([^)\s]+)\)")
MD_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
RST_CODE = re.compile(r"``([^`\n]+)``")
PATHLIKE = re.compile(r"^\.{0,2}/?[\w.*-]+(/[\w.*-]*)*$")
COMMAND = re.compile(r"(?<![\w/.-])gpunn\s+([a-z][\w-]*)(?![\w:/.-])(.*)")


class Problem(NamedTuple):
    document: str
    line: int
    message: str


def documents(root: Path) -> list[Path]:
    found = []
    for pattern in DOCUMENTS:
        for path in sorted(root.glob(pattern)):
            rel = path.relative_to(root).as_posix()
            if not any(fnmatch.fnmatch(rel, s) for s in SKIP):
                found.append(path)
    return found


def code_lines(path: Path) -> list[tuple[int, str, bool]]:
    """(line number, text, is a whole code line) for each code span, link target and code-block line."""
    text = path.read_text().splitlines()
    out, fenced, block_indent = [], False, None
    for number, line in enumerate(text, 1):
        if path.suffix == ".md":
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            if fenced:
                out.append((number, line, True))
                continue
            out += [(number, m, False) for m in MD_CODE.findall(line)] + [(number, m, False) for m in LINKS.findall(line)]
            continue
        stripped = line.strip()
        if block_indent is not None:  # inside a literal block: its indented lines are code
            indent = len(line) - len(line.lstrip())
            if stripped and indent <= block_indent:
                block_indent = None
            elif stripped:
                out.append((number, stripped, True))
                continue
        if re.match(r"\.\. (code-block|code|command-output|prompt)::", stripped) or \
                (stripped.endswith("::") and not stripped.startswith("..")):
            block_indent = len(line) - len(line.lstrip())
            if stripped.startswith(".. command-output::"):
                out.append((number, stripped.split("::", 1)[1].strip(), True))
        out += [(number, m, False) for m in RST_CODE.findall(line)]
    return out


def _words(snippet: str, whole_line: bool) -> list[str]:
    if whole_line:
        snippet = snippet.split(" #", 1)[0]
    return [w.strip("\"'(),;:") for w in re.split(r"[\s=]+", snippet)]


def path_candidates(snippet: str, whole_line: bool, top_level: set) -> list[str]:
    """The words of a code snippet that name files or folders.

    A word with a file suffix is one; a word with a ``/`` and no suffix is one only where it starts
    at one of the repository's top-level entries (``gpunn/nn/``, ``tests/``), or with ``./`` or
    ``../``: "NumPy/CuPy" and "train/val" are words, not paths.
    """
    found = []
    for word in _words(snippet, whole_line):
        word = word.rstrip(".")
        if not word or "://" in word or word.startswith(("-", "$", "~", "/", "<", "@", "%", "{", "gn.", "np.")):
            continue
        if not PATHLIKE.match(word) or not re.search(r"[A-Za-z]", word) or re.fullmatch(r"\.\w+", word):
            continue  # not a path's characters, or a bare suffix (".png")
        if re.search(rf"\.({'|'.join(SUFFIXES)})$", word):
            found.append(word)
        elif "/" in word and (word.split("/")[0] in top_level or word.startswith(("./", "../"))):
            if "." not in word.split("/")[-1]:  # a/b.c with an unknown suffix: a module path or a number
                found.append(word)
    return found


def _pattern(word: str) -> str:
    for placeholder in PLACEHOLDERS:
        word = re.sub(rf"(?<![A-Za-z]){placeholder}(?![a-z])", "*", word)
    return word


def path_exists(word: str, document: Path, root: Path, tracked: list[str]) -> bool:
    pattern = _pattern(word).rstrip("/")
    if any(fnmatch.fnmatch(pattern, w) or fnmatch.fnmatch(word.rstrip("/"), w) for w in WRITTEN):
        return True
    if "/" not in word:  # a bare file name: anywhere in the repository
        return any(fnmatch.fnmatch(Path(t).name, pattern) for t in tracked)
    for base in (root, document.parent):
        target = (base / pattern).resolve()
        try:
            rel = target.relative_to(root).as_posix()
        except ValueError:
            continue
        if "*" in rel:
            if any(fnmatch.fnmatch(t, rel) or fnmatch.fnmatch(t, rel + "/*") for t in tracked):
                return True
        elif target.exists():
            return True
    return False


def tracked_files(root: Path) -> list[str]:
    """The repository's files (git's list where it is a checkout: build outputs do not count)."""
    done = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True)
    if done.returncode == 0:
        return done.stdout.split()
    return [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]


def command_problems(snippet: str) -> list[str]:
    """What is wrong with each ``gpunn ...`` command in ``snippet``, checked against the real parser."""
    from gpunn.cli import parser
    from gpunn.lessons import LESSONS

    subparsers = parser()._subparsers._group_actions[0].choices
    problems = []
    for m in COMMAND.finditer(snippet.split(" #", 1)[0]):
        if re.search(r"\b(import|from)\s+$", snippet[:m.start()]):
            continue  # import gpunn as gn
        sub, rest = m.group(1), re.split(r"\s(?:&&|\||;|#)|`", m.group(2))[0]
        if sub not in subparsers:
            problems.append(f"`gpunn {sub}`: no such command (gpunn has {', '.join(subparsers)})")
            continue
        options = subparsers[sub]._option_string_actions
        words = rest.split()
        for word in words:
            option = word.split("=", 1)[0]
            if option.startswith("--") and option not in options:
                problems.append(f"`gpunn {sub} {option}`: no such option")
        if sub == "lesson" and words and not words[0].startswith("-") and words[0] not in LESSONS \
                and not words[0].isupper():
            problems.append(f"`gpunn lesson {words[0]}`: no such lesson")
    return problems


def check(root: Path = ROOT) -> list[Problem]:
    """Every path and ``gpunn`` command mentioned in README and the docs that does not exist."""
    tracked = tracked_files(root)
    top_level = {t.split("/")[0] for t in tracked} | {"runs", "lessons", "_build"}
    problems = []
    for document in documents(root):
        name = document.relative_to(root).as_posix()
        for number, snippet, whole_line in code_lines(document):
            for word in path_candidates(snippet, whole_line, top_level):
                if not path_exists(word, document, root, tracked):
                    problems.append(Problem(name, number, f"`{word}` does not exist"))
            problems += [Problem(name, number, p) for p in command_problems(snippet)]
    return problems


def report(app) -> None:
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    for p in check(Path(app.config.mentions_root or ROOT)):
        logger.warning(f"{p.message} (mentioned in {p.document})", location=f"{p.document}:{p.line}",
                       type="mentions", subtype="missing")


def setup(app):
    app.add_config_value("mentions_root", "", "env")  # default: this repository
    app.connect("builder-inited", report)
    return {"parallel_read_safe": True}


if __name__ == "__main__":
    found = check()
    for p in found:
        print(f"{p.document}:{p.line}: {p.message}")
    sys.exit(1 if found else 0)
