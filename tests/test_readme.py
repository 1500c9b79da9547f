"""The README's walkthrough runs as written."""

import glob
import os
import re

import pytest

from tests.conftest import requires_tensorflow

README = os.path.join(os.path.dirname(os.path.dirname(__file__)), "README.md")


def _python_blocks():
    with open(README, encoding="utf-8") as f:
        return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


def test_readme_starts_with_the_two_commands():
    with open(README, encoding="utf-8") as f:
        lines = f.read().splitlines()
    commands = lines[lines.index("```bash") + 1 : lines.index("```bash") + 3]
    assert [c.split("#")[0].strip() for c in commands] == ["make demo", "make test"]
    with open(os.path.join(os.path.dirname(README), ".ci", "run")) as f:
        ci = f.read()
    assert "make install" in ci and "make test" in ci


@requires_tensorflow
@pytest.mark.slow
@pytest.mark.skipif(
    not glob.glob("/usr/share/locale/fr/LC_MESSAGES/*.mo"),
    reason="the walkthrough reads the offline gettext catalogs, absent here",
)
def test_walkthrough_and_serving_blocks_run(tmp_path, monkeypatch):
    walkthrough, serving = _python_blocks()[:2]
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(walkthrough, "README walkthrough", "exec"), namespace)
    assert len(namespace["translations"]) == 8
    assert 0.0 <= namespace["scores"]["bleu"] <= 100.0
    exec(compile(serving, "README serving", "exec"), namespace)
    assert os.path.exists(tmp_path / "exports" / "en_fr" / "saved_model.pb")
    assert namespace["tokenizer"].vocabulary_size() == 1000
