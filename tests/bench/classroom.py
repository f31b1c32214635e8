"""Classroom figures: N learners at once on one machine, under a real JupyterHub.

Each learner is a new local user with a server of their own (classroom/jupyterhub_config.py,
LocalProcessSpawner, standbys on as that config leaves them); tandem is installed once with
`tandem install --system`. For each N (1, 4, 8 by default), all N learners acting at once:

- their servers' start (spawn -> ready), and the time from opening a notebook (POST
  /api/sessions) to the reply of its first cell (a `tokio::join!` of 100 and 200 ms sleeps):
  first for the first notebook (no standby yet), then, with every learner's standby engine
  ready, for a notebook opened after closing that one; with how many kernels a standby took;
- resident memory per learner (kernel, engine, standby, Jupyter server: the sum of VmRSS of
  that user's processes by kind) once the first cell replied and the standby is ready, and
  the peak while the learner ran lesson 3; also the machine's MemAvailable drop per learner;
- one learner's warm cell (`warm`, median of 5) unloaded, and while the other N - 1 run
  lesson 3 at once; how long lesson 3 took them, and the one learner alone.

Prints a table (a column per N), the install time, and how many learners 8, 16, 32 and
64 GB hold: (RAM - 2 GB for the system) / the highest per-learner peak. Asserts only that
the cells worked. Removes its users (tdmbench<i>) and install after, even on Ctrl-C.

Run as root, after tests/run installed the hub into /opt/tandem-tests:
    .venv/bin/python tests/bench/classroom.py [--learners 1 4 8]
"""
import argparse
import concurrent.futures
import contextlib
import os
import pathlib
import pwd
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

TESTS = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
from conftest import ROOT, TEST_AREA, remove_user  # noqa: E402
from test_classroom import (HUB_ENV, LESSON, PROXY, KernelSocket, Learner,  # noqa: E402
                            resident_mb, running_hub, standbys_ready, wait_for,
                            warm_latency)

FIRST_CELL = (
    "tokio::join!(\n"
    "    tokio::time::sleep(std::time::Duration::from_millis(100)),\n"
    "    tokio::time::sleep(std::time::Duration::from_millis(200)),\n"
    ");"
)
SECOND_NOTEBOOK = "tandem-lessons/01-start-here.ipynb"
KINDS = ("kernel", "engine", "standby", "server")
HANDED_OVER = re.compile(rb"kernel handed to the standby process \d+")
NOT_USED = re.compile(rb"standby kernel not used: ([^\n]*)")


@contextlib.contextmanager
def hub_for(prefix, users):
    """tests/test_classroom.py's hub for `users`, in a private folder removed after; its
    log's end is printed when the run fails."""
    state = pathlib.Path(tempfile.mkdtemp(prefix="tandem-bench-hub-"))  # 0700
    try:
        with running_hub(prefix, users, state) as hub:
            try:
                yield hub
            except BaseException:
                print("the hub's log ends:\n" + "\n".join(
                    hub.log.read_text(errors="replace").splitlines()[-40:]), file=sys.stderr)
                raise
    finally:
        shutil.rmtree(state, ignore_errors=True)


def standby_use(hub, since):
    """How many kernels a standby took after byte `since` of the hub's log (the kernels log
    there), and why a standby took none of the others."""
    log = hub.log.read_bytes()[since:]
    reasons = sorted({reason.decode(errors="replace") for reason in NOT_USED.findall(log)})
    return f"{len(HANDED_OVER.findall(log))}" + (
        f" (not used: {'; '.join(reasons)})" if reasons else "")


def at_once(work, items):
    """work(item) for every item, each in a thread of its own, all started together."""
    pool = concurrent.futures.ThreadPoolExecutor(max(1, len(items)))
    try:
        return list(pool.map(work, items))
    finally:  # on Ctrl-C, removing the users ends the threads' websockets
        pool.shutdown(wait=False, cancel_futures=True)


def timed(work, *args, **options):
    """(seconds work(*args, **options) took, what it returned)"""
    started = time.monotonic()
    result = work(*args, **options)
    return time.monotonic() - started, result


def open_and_run_first_cell(learner, path):
    """Opens `path` in a new kernel and runs FIRST_CELL: (seconds to its reply, kernel)."""
    started = time.monotonic()
    kernel = learner.open(path)
    reply, outputs, _ = kernel.execute(FIRST_CELL)
    assert reply["status"] == "ok", (learner.name, outputs)
    return time.monotonic() - started, kernel


def meminfo_mb(field):
    with open("/proc/meminfo") as meminfo:
        return next(int(line.split()[1]) for line in meminfo if line.startswith(field)) / 1024


def fresh(kernel):
    """A new websocket to `kernel`'s kernel, for one left idle: the server drops a socket
    whose pings went unanswered for 90 s, and this client answers them only in execute()."""
    kernel.close()
    return KernelSocket(kernel.learner, kernel.kernel_id)


@contextlib.contextmanager
def peak_memory(users):
    """Each user's highest resident total (MB), sampled every second in a thread."""
    peak, stop = dict.fromkeys(users, 0.0), threading.Event()

    def sample():
        while not stop.wait(1.0):
            for user in users:
                peak[user] = max(peak[user], sum(resident_mb(user).values()))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def wait_for_quiet():
    """Waits while a pytest runs (the other engineer's tests measure time too)."""
    while subprocess.run(["pgrep", "-f", "pytest"], capture_output=True).returncode == 0:
        print("a pytest is running; waiting 30 s", file=sys.stderr)
        time.sleep(30)


def measure(prefix, count):
    """Every figure for `count` learners, each a new user removed after."""
    users, made, figures = [f"tdmbench{i}" for i in range(count)], [], {}
    began = time.monotonic()
    try:
        for user in users:
            with contextlib.suppress(KeyError):
                pwd.getpwnam(user)
                remove_user(user)  # left by an interrupted run
            subprocess.run(["useradd", "-m", "-s", "/bin/sh", user], check=True)
            made.append(user)
        available_before = meminfo_mb("MemAvailable:")
        with hub_for(prefix, users) as hub:
            started = at_once(lambda user: timed(Learner, hub, user), users)
            figures["server start (spawn -> ready)"] = [took for took, _ in started]
            learners = [learner for _, learner in started]

            with peak_memory(users) as peaks:
                since = hub.log.stat().st_size
                opened = at_once(lambda learner: open_and_run_first_cell(learner, LESSON),
                                 learners)
                figures["first notebook: open -> first cell's reply"] = [t for t, _ in opened]
                figures["  kernels a standby took (first notebook)"] = standby_use(hub, since)
                kernels = [kernel for _, kernel in opened]
                wait_for(standbys_ready(users), "the learners' standbys", timeout=900)
                kernels = [fresh(kernel) for kernel in kernels]
                sizes = [resident_mb(user) for user in users]
                for kind in KINDS:
                    figures[f"resident MB per learner: {kind}"] = [
                        size.get(kind, 0) for size in sizes]
                figures["resident MB per learner, in all"] = [
                    sum(size.values()) for size in sizes]
                figures["MemAvailable drop per learner (MB)"] = [
                    (available_before - meminfo_mb("MemAvailable:")) / count]

                warm_latency(kernels[0], runs=1)
                figures["warm cell, unloaded"] = [warm_latency(kernels[0])]
                if count > 1:
                    pool = concurrent.futures.ThreadPoolExecutor(count - 1)
                    try:
                        lessons = [pool.submit(timed, kernel.run_notebook, LESSON)
                                   for kernel in kernels[1:]]
                        time.sleep(1.0)  # their first cells have started
                        loaded = warm_latency(kernels[0])
                        overlapped = not any(lesson.done() for lesson in lessons)
                        took = [lesson.result()[0] for lesson in lessons]
                    finally:
                        pool.shutdown(wait=False, cancel_futures=True)
                    figures["warm cell, the N - 1 others running lesson 3"] = [loaded]
                    figures["  loaded / unloaded"] = [loaded / figures["warm cell, unloaded"][0]]
                    figures["  every lesson ran until the warm cells ended"] = (
                        "yes" if overlapped else "no")
                    figures["lesson 3, the N - 1 others at once"] = took
                kernels[0] = fresh(kernels[0])
                figures["lesson 3, one learner alone"] = [
                    timed(kernels[0].run_notebook, LESSON)[0]]
            figures["peak resident MB per learner (with lesson 3)"] = list(peaks.values())

            wait_for(standbys_ready(users), "the learners' standbys", timeout=900)
            for learner, kernel in zip(learners, kernels):
                kernel.close()
                learner.api("DELETE", f"/api/kernels/{kernel.kernel_id}")
            since = hub.log.stat().st_size
            reopened = at_once(lambda learner: open_and_run_first_cell(
                learner, SECOND_NOTEBOOK), learners)
            figures["notebook opened after it, standby ready: open -> reply"] = [
                t for t, _ in reopened]
            figures["  kernels a standby took (notebook after)"] = standby_use(hub, since)
            for _, kernel in reopened:
                kernel.close()
    finally:
        for user in made:
            remove_user(user)
    figures["this run took"] = [time.monotonic() - began]
    return figures


def shown(figure, values):
    if isinstance(values, (int, str)):
        return str(values)
    if "MB" in figure:
        return f"{statistics.median(values):.0f}" + (
            f" (max {max(values):.0f})" if len(values) > 1 else "")
    if figure.endswith("loaded / unloaded"):
        return f"{values[0]:.2f}"
    median = statistics.median(values)
    return f"{median:.3f} s" + (f" (max {max(values):.3f})" if len(values) > 1 else "")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args()
    assert os.geteuid() == 0, "run as root: it installs tandem and makes users"
    assert (HUB_ENV / "bin" / "jupyterhub").exists() and PROXY.exists(), "run tests/run first"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # clean up as on Ctrl-C

    prefix = TEST_AREA / f"prefix-bench-{uuid.uuid4().hex[:6]}"
    results = {}
    try:
        wait_for_quiet()
        installed, done = timed(subprocess.run, [str(ROOT / "target/release/tandem"), "install",
                                f"--system={prefix}"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        rust_src = (prefix / "lib/tandem/toolchain/lib/rustlib/src").exists()
        for count in args.learners:
            wait_for_quiet()
            results[count] = measure(prefix, count)
    finally:
        shutil.rmtree(prefix, ignore_errors=True)
        if results:  # the runs that ended, also when a later one failed
            report(results, installed, rust_src)


def report(results, installed, rust_src):
    counts = list(results)
    print("| figure | " + " | ".join(f"{n} learner{'s' * (n > 1)}" for n in counts) + " |")
    print("|---" * (len(counts) + 1) + "|")
    for figure in dict.fromkeys(f for n in counts for f in results[n]):
        print(f"| {figure} | " + " | ".join(
            shown(figure, results[n][figure]) if figure in results[n] else "-"
            for n in counts) + " |")
    total = meminfo_mb("MemTotal:") / 1024
    print(f"\ninstall --system: {installed:.0f} s; {os.cpu_count()} cores, {total:.1f} GiB; "
          f"rust-src in the installed toolchain: {'yes' if rust_src else 'no'}")
    peak = max(max(r["peak resident MB per learner (with lesson 3)"]) for r in results.values())
    print(f"learners a server holds, by memory ((RAM - 2 GB) / {peak:.0f} MB, the highest "
          "per-learner peak):")
    for ram in (8, 16, 32, 64):
        print(f"  {ram} GB: {int((ram - 2) * 1024 // peak)}")


if __name__ == "__main__":
    main()
