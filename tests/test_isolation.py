"""Tests use their own models and data folders: what a user keeps in ``models/`` and ``data/`` never
changes a test's outcome (a model trained in the app once made ``make test`` fail)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from conftest import REPO_ROOT, SHIPPED_MODEL

# Tests that once read the user's models folder: run again in a copy of the project whose models/
# and data/ hold what a user leaves there.
ONCE_AFFECTED = ("tests/test_app_learn.py::test_train_page_names_both_class_errors",
                 "tests/test_isolation.py::test_each_test_starts_with_empty_folders_of_its_own")


def test_each_test_starts_with_empty_folders_of_its_own(capsys):
    import ssd
    from ssd.cli.main import main
    from ssd.workspace import data_dir, dataset_folders, models_dir

    assert os.path.dirname(os.path.abspath(ssd.__file__)) == os.path.join(REPO_ROOT, "ssd")
    for folder in (models_dir(), data_dir()):
        assert not folder.startswith(REPO_ROOT + os.sep) and os.listdir(folder) == []
    assert dataset_folders() == []
    assert main(["models"]) == 0
    out = capsys.readouterr()
    assert out.out == "" and "no usable model found" in out.err


def _project_copy(dest: str) -> str:
    """The project's code, tests and shipped model, as a fresh clone would have them."""
    for name in ("ssd", "app_pages", "app_assets", "tests", ".streamlit"):   # .streamlit: listen on localhost
        shutil.copytree(os.path.join(REPO_ROOT, name), os.path.join(dest, name),
                        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    for name in ("app.py", "pytest.ini"):
        shutil.copy2(os.path.join(REPO_ROOT, name), dest)
    shutil.copytree(SHIPPED_MODEL, os.path.join(dest, "models", "tiny-pikachu"),
                    ignore=shutil.ignore_patterns("checkpoints", "events.jsonl", "train.log"))
    return dest


def _users_leftovers(clone: str, tiny_model_dir: str, synth_dir: str) -> None:
    """A model trained in the app and made the default, a broken model folder, a dataset."""
    user_model = os.path.join(clone, "models", "ux-run")
    shutil.copytree(tiny_model_dir, user_model)
    meta_path = os.path.join(user_model, "meta.json")
    with open(meta_path, encoding="utf-8") as fh:
        meta = json.load(fh)
    with open(meta_path, "w", encoding="utf-8") as fh:
        json.dump({**meta, "default": True}, fh)
    os.makedirs(os.path.join(clone, "models", "half-copied"))
    with open(os.path.join(clone, "models", "half-copied", "meta.json"), "w", encoding="utf-8") as fh:
        fh.write("{not json")
    shutil.copytree(synth_dir, os.path.join(clone, "data", "my-set"))


def test_a_users_models_and_data_change_no_test_outcome(tmp_path, tiny_model_dir, synth_dir):
    clone = _project_copy(str(tmp_path / "clone"))
    _users_leftovers(clone, tiny_model_dir, synth_dir)
    env = {k: v for k, v in os.environ.items() if k not in ("SSD_MODELS_DIR", "SSD_DATA_DIR")}
    # the user's folders are what the code finds when nothing points it elsewhere
    seen = subprocess.run([sys.executable, "-m", "ssd", "models"], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=120)
    assert seen.returncode == 0 and "ux-run" in seen.stdout and "half-copied" in seen.stderr, seen.stderr
    run = subprocess.run([sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "-p", "no:cacheprovider", *ONCE_AFFECTED],
                         cwd=clone, env={**env, "SSD_TEST_TINY_MODEL": tiny_model_dir}, capture_output=True,
                         text=True, timeout=900)
    assert run.returncode == 0 and f"{len(ONCE_AFFECTED)} passed" in run.stdout, run.stdout[-3000:]


def test_no_test_points_the_app_at_the_projects_own_folders():
    """A test that needs the shipped model takes ``shipped_models_root`` (a copy of it alone) or names
    ``SHIPPED_MODEL``; none hands the project's models/ or data/ folder to the app or a listing."""
    import re

    setenv = re.compile(r"setenv\(\s*[\"']SSD_(MODELS|DATA)_DIR[\"']\s*,\s*([^)]*)")
    listing = re.compile(r"\b(default_model|list_models)\(\s*\)")
    found = []
    folder = os.path.join(REPO_ROOT, "tests")
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                m = setenv.search(line)
                if (m and "REPO" in m.group(2)) or listing.search(line):
                    found.append(f"{name}:{number}: {line.strip()}")
    assert found == []
