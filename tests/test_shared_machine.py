"""Safe on a shared machine: what another local user leaves in shared places (a cargo
configuration in a parent folder of the build, a scratch folder made in advance) changes
nothing, and what a cell prints cannot pass for tandem's own marker lines.

One kernel serves the module, started the way an attacked user's would be: with TMPDIR
pointing at a folder that holds a planted `.cargo/config.toml` (as `/tmp` can), and with
tandem's private folder made in advance, open to everyone, holding another planted one.
"""
import os
import pathlib
import shutil
import stat
import uuid

import pytest

from conftest import own_kernel, run_cell

PLANTED_CONFIG = """\
[build]
rustc-wrapper = "{evil}"
[target.x86_64-unknown-linux-gnu]
linker = "{evil}"
[target.aarch64-unknown-linux-gnu]
linker = "{evil}"
[env]
TANDEM_PLANTED = "yes"
"""


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    """(kernel client, the kernel's log, the file the planted program would create, the
    private folder tandem was given)."""
    base = tmp_path_factory.mktemp("attacked")
    ran = base / "the-planted-program-ran"
    evil = base / "evil.sh"
    evil.write_text(f"#!/bin/sh\ntouch {ran}\nexit 1\n")
    evil.chmod(0o755)
    # A shared temporary folder with another user's cargo configuration in it.
    tmpdir = base / "tmp"
    (tmpdir / ".cargo").mkdir(parents=True)
    (tmpdir / ".cargo" / "config.toml").write_text(PLANTED_CONFIG.format(evil=evil))
    # tandem's private folder, made in advance and open to all, with a planted config in
    # it. It sits in this user's cache (a place no one else can write), so that the only
    # thing wrong is what was planted.
    cache = pathlib.Path.home() / ".cache" / f"tandem-test-{uuid.uuid4().hex[:12]}"
    planted_root = cache / "tandem"
    (planted_root / ".cargo").mkdir(parents=True)
    (planted_root / "kernels").mkdir()
    (planted_root / ".cargo" / "config.toml").write_text(PLANTED_CONFIG.format(evil=evil))
    for made in (planted_root, planted_root / "kernels", planted_root / ".cargo"):
        made.chmod(0o777)
    log_path = base / "kernel.log"
    env = dict(os.environ, TMPDIR=str(tmpdir), XDG_CACHE_HOME=str(cache))
    try:
        with open(log_path, "w") as log, own_kernel(env=env, stderr=log) as (_, kc):
            yield kc, log_path, ran, cache
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def test_planted_cargo_configurations_change_nothing(attacked):
    kc, log_path, ran, cache = attacked
    cell = run_cell(kc, 'println!("{}", option_env!("TANDEM_PLANTED").is_some()); 40 + 2')
    assert cell.status == "ok", cell.reply["content"]
    assert cell.value() == "42"
    assert cell.text().strip() == "false", "the planted [env] did not reach the cell"
    assert not ran.exists(), "the planted linker or rustc-wrapper ran"

    # The kernel compiled in a fresh folder of its own, 0700, inside a fresh private root.
    where = run_cell(kc, 'println!("{}", std::env::var("EVCXR_TMPDIR").unwrap());')
    build_dir = pathlib.Path(where.text().strip())
    root = cache / "tandem"
    assert build_dir.parent.parent == root / "kernels", build_dir
    for private in (root, root / "kernels", build_dir.parent):
        mode = stat.S_IMODE(private.stat().st_mode)
        assert mode == 0o700, (private, oct(mode))
    assert not (root / ".cargo" / "config.toml").exists() or \
        "planted" not in (root / ".cargo" / "config.toml").read_text()
    # What was there before was set aside, not used, and the log says so.
    aside = [p for p in cache.iterdir() if p.name.startswith("tandem.untrusted-")]
    assert len(aside) == 1, list(cache.iterdir())
    assert (aside[0] / ".cargo" / "config.toml").exists()
    log = log_path.read_text()
    assert "was not this user's private folder" in log and "nothing in it is used" in log, log


def test_printed_marker_lines_stay_text(attacked):
    kc = attacked[0]
    forged = [
        '\\u{1f}TANDEM display {"text/html": "<b>forged</b>"}',
        "\\u{1f}TANDEM panic",
        "\\u{1f}TANDEM-00000000000000000000000000000000 panic",
        '\\u{1f}TANDEM span {"name":"fake","kind":"async","thread":"main","start":{"secs":0,"nanos":0},"end":{"secs":1,"nanos":0}}',
    ]
    code = "\n".join(f'println!("{{}}", "{line.replace(chr(34), chr(92) + chr(34))}");'
                     for line in forged)
    cell = run_cell(kc, code)
    assert cell.status == "ok", cell.reply["content"]
    assert cell.displays() == [], "no printed line became a display"
    assert cell.timelines() == [], "no printed line became a task span"
    text = cell.text()
    for expected in ("TANDEM display", "<b>forged</b>", "TANDEM panic", "TANDEM span"):
        assert expected in text, (expected, text)


def test_an_unterminated_mime_block_is_shown_as_text_and_the_cell_ends(attacked):
    kc = attacked[0]
    cell = run_cell(kc, 'println!("EVCXR_BEGIN_CONTENT text/html\\n<i>never closed</i>");',
                    timeout=60)
    assert cell.status == "ok", cell.reply["content"]
    assert "<i>never closed</i>" in cell.text()
    # And the kernel goes on.
    assert run_cell(kc, "1 + 2").value() == "3"
