"""The files a project is expected to have, and that they agree: LICENSE, CHANGELOG.md, CITATION.cff, pyproject.toml."""

import re
import tomllib
from datetime import date
from importlib import metadata
from pathlib import Path

import pytest
import yaml

import gpunn as gn

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SECTIONS = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}  # Keep a Changelog's


def validate_citation(path: Path) -> None:
    """cffconvert's validation against the Citation File Format's JSON schema (raises if invalid)."""
    from cffconvert.cli.create_citation import create_citation

    create_citation(str(path), None).validate()


def test_one_version_everywhere():
    version = PROJECT["version"]
    assert gn.__version__ == version
    assert metadata.version("gpunn") == version, "reinstall: pip install -e ."
    assert str(yaml.safe_load((ROOT / "CITATION.cff").read_text())["version"]) == version
    first = re.search(r"^## \[(\d+\.\d+\.\d+)\]", (ROOT / "CHANGELOG.md").read_text(), re.M).group(1)
    assert first == version


def test_license_is_the_mit_license_pyproject_declares():
    text = (ROOT / "LICENSE").read_text()
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]
    assert text.startswith("MIT License\n") and "Copyright (c)" in text and "the gpunn authors" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text


def test_citation_file_is_valid_cff():
    validate_citation(ROOT / "CITATION.cff")


def test_the_citation_check_refuses_an_invalid_file(tmp_path):
    broken = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    del broken["authors"]  # required by the format
    (tmp_path / "CITATION.cff").write_text(yaml.safe_dump(broken))
    with pytest.raises(Exception, match="authors"):
        validate_citation(tmp_path / "CITATION.cff")


def test_changelog_is_keep_a_changelog():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog\n") and "keepachangelog.com" in text
    releases = re.findall(r"^## \[(\d+)\.(\d+)\.(\d+)\] - (unreleased|\d{4}-\d{2}-\d{2})$", text, re.M)
    assert len(releases) == len(re.findall(r"^## ", text, re.M)) >= 2, "every ## heading is '[x.y.z] - date'"
    versions = [tuple(map(int, r[:3])) for r in releases]
    assert versions == sorted(versions, reverse=True) and len(set(versions)) == len(versions)
    dates = [date.fromisoformat(r[3]) for r in releases if r[3] != "unreleased"]
    assert dates == sorted(dates, reverse=True)
    assert all(r[3] != "unreleased" for r in releases[1:]), "only the newest version can be unreleased"
    assert set(re.findall(r"^### (.+)$", text, re.M)) <= SECTIONS


def test_classifiers_are_pypis_and_urls_are_given():
    from trove_classifiers import classifiers

    assert PROJECT["classifiers"] and not set(PROJECT["classifiers"]) - classifiers
    assert not any(c.startswith("License ::") for c in PROJECT["classifiers"])  # PEP 639: the license expression says it
    python = re.search(r">=(\d+)\.(\d+)", PROJECT["requires-python"]).groups()
    assert f"Programming Language :: Python :: {'.'.join(python)}" in PROJECT["classifiers"]
    urls = PROJECT["urls"]
    assert {"Homepage", "Documentation", "Source", "Issues", "Changelog"} <= set(urls)
    assert all(u.startswith("https://") for u in urls.values())
    assert metadata.metadata("gpunn")["License-Expression"] == "MIT"
