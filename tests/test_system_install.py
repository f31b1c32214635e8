"""One installation for a whole class: `tandem install --system PREFIX` (as root) puts the
binary, the sources, vendored crates, a toolchain and the prebuilt crates under PREFIX, and
learners who share nothing with root or with each other run notebooks from it.

The installation and two learners come from conftest's `installation` (removed after). They run a notebook at the same time,
with a bare environment (no rustup home, no cargo home of root's), and each must get their
own output; neither may read the other's kernel folders nor write into the installation.
Needs root (to install and to make users); skipped otherwise.
"""
import concurrent.futures
import json
import os
import pathlib
import pwd
import stat

from conftest import NEEDS_ROOT, as_learner

ROOT = pathlib.Path(__file__).resolve().parents[1]
TANDEM = ROOT / "target" / "release" / "tandem"

pytestmark = NEEDS_ROOT

NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "whoami",
            "metadata": {},
            "outputs": [],
            "source": ['println!("hello from {}", std::env::var("USER").unwrap_or_default());'],
        },
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "joined",
            "metadata": {},
            "outputs": [],
            "source": [
                "async fn wait_then(n: u64) -> u64 {\n",
                "    tokio::time::sleep(std::time::Duration::from_millis(100 * n)).await;\n",
                "    n\n",
                "}\n",
                "let (a, b) = tokio::join!(wait_then(1), wait_then(2));\n",
                'println!("sum {}", a + b);',
            ],
        },
    ],
    "metadata": {
        "kernelspec": {"display_name": "Rust (tandem)", "language": "rust", "name": "tandem"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


def run_notebook(prefix, user):
    home = pathlib.Path(pwd.getpwnam(user).pw_dir)
    notebook = home / "class.ipynb"
    notebook.write_text(json.dumps(NOTEBOOK))
    entry = pwd.getpwnam(user)
    os.chown(notebook, entry.pw_uid, entry.pw_gid)
    executed = home / "class.out.ipynb"
    done = as_learner(user, str(prefix / "bin" / "tandem"), "run", str(notebook), "-o", str(executed))
    return done, executed


def printed(executed):
    cells = json.loads(executed.read_text())["cells"]
    return [
        "".join(
            "".join(out.get("text", "")) for out in cell["outputs"] if out.get("name") == "stdout"
        )
        for cell in cells
    ]


def test_two_learners_run_a_notebook_at_once_from_one_installation(installation):
    prefix, learners = installation
    template_rlibs = sorted((prefix / "lib" / "tandem" / "engine-template").rglob("libtokio-*.rlib"))
    assert template_rlibs, "the installation holds no prebuilt tokio"
    with concurrent.futures.ThreadPoolExecutor(len(learners)) as pool:
        runs = list(pool.map(lambda user: run_notebook(prefix, user), learners))
    for user, (done, executed) in zip(learners, runs):
        assert done.returncode == 0, f"{user}: {done.stdout}\n{done.stderr}"
        whoami, joined = printed(executed)
        assert whoami.strip() == f"hello from {user}"
        assert joined.strip() == "sum 3"
        assert executed.stat().st_uid == pwd.getpwnam(user).pw_uid


def test_the_installation_is_roots_alone_and_readable_by_all(installation):
    prefix, _ = installation
    tandem_files = [prefix / "bin" / "tandem", prefix / "share" / "jupyter" / "kernels" / "tandem"]
    tandem_files += [prefix / "lib" / "tandem"]
    walked = 0
    for top in tandem_files:
        for path in [top, *top.rglob("*")] if top.is_dir() else [top]:
            meta = path.lstat()
            if stat.S_ISLNK(meta.st_mode):
                continue
            walked += 1
            assert meta.st_uid == 0, path
            assert meta.st_mode & 0o022 == 0, f"{path} is writable by others"
            assert meta.st_mode & 0o004, f"{path} is not readable by all"
            if stat.S_ISDIR(meta.st_mode):
                assert meta.st_mode & 0o001, f"{path} cannot be entered by all"
    assert walked > 1000, walked


def test_a_learner_cannot_reach_another_learners_kernels_or_the_installation(installation):
    prefix, (first, second) = installation
    if not (pathlib.Path(pwd.getpwnam(second).pw_dir) / ".cache" / "tandem").exists():
        run_notebook(prefix, second)
    private = pathlib.Path(pwd.getpwnam(second).pw_dir) / ".cache" / "tandem"
    assert private.is_dir(), "the second learner's kernel folder was never made"
    listed = as_learner(first, "ls", str(private))
    assert listed.returncode != 0 and "Permission denied" in listed.stderr, listed
    planted = as_learner(first, "touch", str(prefix / "lib" / "tandem" / "planted"))
    assert planted.returncode != 0 and "Permission denied" in planted.stderr, planted
    assert not (prefix / "lib" / "tandem" / "planted").exists()
    replaced = as_learner(first, "touch", str(prefix / "bin" / "tandem"))
    assert replaced.returncode != 0, replaced
