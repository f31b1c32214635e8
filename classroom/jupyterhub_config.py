# JupyterHub configuration for a class on one server: each learner is a local user, and
# tandem was installed once for all of them with `sudo tandem install --system=/opt/tandem`.
# tests/test_classroom.py runs a real hub with this file (only ports, users and the
# authenticator are its own); the README's "Teach a class" shows it.
import asyncio
import os
import pwd
import sys
from pathlib import Path

# Where `tandem install --system` put tandem: PREFIX/bin/tandem, the kernelspec in
# PREFIX/share/jupyter, the lessons in PREFIX/share/tandem/lessons.
TANDEM_PREFIX = Path(os.environ.get("TANDEM_PREFIX", "/opt/tandem"))
# The Python environment JupyterHub runs from; every learner must be able to read it
# (a virtualenv made with the system's python3, not one inside root's home).
HUB_ENV = Path(os.environ.get("TANDEM_HUB_ENV", "/opt/jupyterhub"))

c.JupyterHub.spawner_class = "jupyterhub.spawner.LocalProcessSpawner"
c.Spawner.cmd = [str(HUB_ENV / "bin" / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab/tree/tandem-lessons"
c.Spawner.environment = {
    # Jupyter finds the "Rust (tandem)" kernel here; nothing of it is in a learner's home.
    "JUPYTER_PATH": str(TANDEM_PREFIX / "share" / "jupyter"),
    # A learner needs no rustup: the kernel puts the installation's own toolchain first.
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    # Limits on the process that runs a learner's cells (their kernel stays up and says
    # which limit a cell met). A learner's servers and kernels take about 1.5 GB of their
    # own; the lessons need far less than 2 GB more, and 200 threads at most.
    "TANDEM_MEMORY_LIMIT": "2G",
    "TANDEM_PROCESS_LIMIT": "1024",
}
# The first start of a learner's server compiles nothing (the install prebuilt tokio), but
# copies about 600 MB of prebuilt crates into the learner's cache: give it time on a busy
# server.
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 60


# Runs as the learner (never as root: a learner may have made `tandem-lessons` a symbolic
# link to anywhere), so it can write nothing the learner could not; isolated from the
# learner's own Python files (-I, run from /), and private (umask 077: homes may be open
# to all, and the copies become the learner's answers).
COPY_LESSONS = """
import shutil, sys
from pathlib import Path
target = Path.home() / "tandem-lessons"
target.mkdir(exist_ok=True)
for lesson in map(Path, sys.argv[1:]):
    copy = target / lesson.name
    if not copy.exists() and not copy.is_symlink():
        shutil.copyfile(lesson, copy)
"""


async def copy_lessons(spawner):
    """On each start, copies the lessons a learner does not have yet into their home's
    `tandem-lessons` folder; a lesson they have already worked on is kept as it is."""
    lessons = sorted((TANDEM_PREFIX / "share" / "tandem" / "lessons").glob("*.ipynb"))
    user = pwd.getpwnam(spawner.user.name)
    copying = await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-c", COPY_LESSONS, *map(str, lessons),
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
        umask=0o077,
        env={"HOME": user.pw_dir, "PATH": "/usr/bin:/bin"},
        cwd="/",
    )
    try:
        status = await asyncio.wait_for(copying.wait(), timeout=60)
    except asyncio.TimeoutError:
        copying.kill()
        raise RuntimeError(f"copying the lessons for {user.pw_name} took over 60 s")
    if status != 0:
        raise RuntimeError(f"copying the lessons for {user.pw_name} failed ({status})")


c.Spawner.pre_spawn_hook = copy_lessons
