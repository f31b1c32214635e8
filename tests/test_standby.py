"""Standby kernels, through jupyter_client: a kernel started ahead of time takes over the
next kernel Jupyter launches, so that kernel's first cell does not wait for the engine;
it runs in the new kernel's folder with none of the old kernel's variables, is
interrupted and shut down like any kernel, and stops at once when its launcher is killed.
A kernel of another environment is refused, and a standby stops with its Jupyter server.
A standby deals with no process of another user, even one that reaches its socket (the
kernel's side of that is tested in test_shared_machine.py, on its shared kernel).
"""
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time

import jupyter_client
import pytest

from conftest import AS_NOBODY, KERNEL_NAME, SYSTEM_PYTHON, ended, run_cell

TANDEM = pathlib.Path(__file__).resolve().parent.parent / "target" / "release" / "tandem"

# The cell the benchmark calls "first async cell": two sleeps awaited together.
ASYNC_CELL = (
    "tokio::join!(\n"
    "    tokio::time::sleep(std::time::Duration::from_millis(1000)),\n"
    "    tokio::time::sleep(std::time::Duration::from_millis(500)),\n"
    ");"
)
ASYNC_WAITS = 1.0
SERVING_PROCESS = 'println!("{}", std::os::unix::process::parent_id());'


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def standby_dir():
    """Standbys on, kept in a folder of their own; any left running are stopped after."""
    saved = {name: os.environ.get(name) for name in
             ("TANDEM_STANDBY", "TANDEM_STANDBY_DIR", "TANDEM_STANDBY_IDLE")}
    # In the shared temporary folder (the standby makes it private), so that a test can
    # open the way to its socket for another user.
    dir = pathlib.Path(tempfile.mkdtemp(prefix="tandem-standby-"))
    os.environ.update(TANDEM_STANDBY="on", TANDEM_STANDBY_DIR=str(dir),
                      TANDEM_STANDBY_IDLE="300")
    yield dir
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    stop_standby(dir)
    shutil.rmtree(dir, ignore_errors=True)


def wait_for_standby(dir, timeout=180):
    """Until a standby's engine is up (its socket takes kernels from its first moment)."""
    wait_until(lambda: (dir / "standby.ready").exists(), timeout, "a standby kernel is ready")


def stop_standby(dir):
    holder = (dir / "standby.lock").read_text().strip() if (dir / "standby.lock").exists() else ""
    if holder.isdigit() and not ended(int(holder)) and \
            b"--standby" in pathlib.Path(f"/proc/{holder}/cmdline").read_bytes():
        os.kill(int(holder), signal.SIGTERM)
        wait_until(lambda: ended(int(holder)), 30, "the standby stopped when asked")


def start(cwd, env=None):
    km = jupyter_client.KernelManager(kernel_name=KERNEL_NAME)
    # The same environment for every kernel: a standby takes over only kernels whose
    # environment is its own (pytest changes PYTEST_CURRENT_TEST from test to test).
    env = dict(os.environ if env is None else env)
    env.pop("PYTEST_CURRENT_TEST", None)
    km.start_kernel(cwd=str(cwd), env=env)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return km, kc


def stop(km, kc):
    kc.stop_channels()
    if km.is_alive():
        km.shutdown_kernel(now=True)


def first_async_cell(kc):
    cell = run_cell(kc, ASYNC_CELL)
    assert cell.status == "ok", cell.reply["content"]
    # Seconds from sending the cell to its idle status (just after the reply).
    return cell.outputs[-1][0] - ASYNC_WAITS


def serving_pid(kc):
    cell = run_cell(kc, SERVING_PROCESS)
    assert cell.status == "ok", cell.reply["content"]
    return int(cell.text().strip())


def test_a_standby_takes_over_the_next_kernel(standby_dir, tmp_path):
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()

    # No standby yet: the first kernel starts its own engine, then a standby for the next.
    km1, kc1 = start(first_dir)
    try:
        cold = first_async_cell(kc1)
        assert serving_pid(kc1) == km1.provisioner.pid
        assert run_cell(kc1, "let only_in_the_first = 1;").status == "ok"
        wait_for_standby(standby_dir)

        km2, kc2 = start(second_dir)
        try:
            warm = first_async_cell(kc2)
            print(f"first async cell, reply - waits: own engine {cold:.2f} s, "
                  f"standby {warm:.2f} s")
            assert warm < 0.5 * cold, (warm, cold)
            serving = serving_pid(kc2)
            assert serving != km2.provisioner.pid, "a standby process serves the kernel"

            # It is the second kernel in every way that shows.
            where = run_cell(kc2, 'println!("{}", std::env::current_dir().unwrap().display());')
            assert pathlib.Path(where.text().strip()).resolve() == second_dir.resolve()
            gone = run_cell(kc2, "only_in_the_first")
            assert gone.status == "error"
            assert "only_in_the_first" in gone.reply["content"]["evalue"]

            # Interrupted like any kernel, its variables kept.
            assert run_cell(kc2, "let kept = 41;").status == "ok"
            msg_id = kc2.execute('blocking_task("long wait", 60.0);')
            wait_until(lambda: "long wait started" in collected(kc2, msg_id), 30,
                       "the wait started")
            km2.interrupt_kernel()
            reply = kc2.get_shell_msg(timeout=10)
            assert reply["content"]["status"] == "error"
            assert reply["content"]["ename"] == "Interrupted"
            assert run_cell(kc2, "kept + 1").value() == "42"

            # Still serving after longer than any timeout of the handover.
            time.sleep(6)
            assert run_cell(kc2, "kept + 2").value() == "43"

            # Shut down like any kernel: the launcher and the standby's process both end.
            launcher = km2.provisioner.pid
            kc2.stop_channels()
            km2.shutdown_kernel(now=False)
            wait_until(lambda: ended(serving) and ended(launcher), 10,
                       "both processes ended after shutdown")
        finally:
            stop(km2, kc2)
    finally:
        stop(km1, kc1)



ASK_AS_ANOTHER_USER = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(sys.argv[1])
try:
    s.sendall(b'{"build": "x", "environment": {}, "connection_file": "/x", "directory": "/"}\\n')
    answer = s.recv(4096).decode()
except (BrokenPipeError, ConnectionResetError):  # closed with the request unread (or unsent)
    answer = ""
print("answered: " + answer)
"""



def test_a_standby_answers_no_other_user(standby_dir):
    wait_for_standby(standby_dir)
    socket_path = standby_dir / "standby.sock"
    # Open the way to the socket, as a careless chmod could: the standby's own check of
    # who connects must still turn another user away.
    os.chmod(standby_dir, 0o711)
    os.chmod(socket_path, 0o777)
    try:
        asked = subprocess.run(AS_NOBODY + [SYSTEM_PYTHON, "-c", ASK_AS_ANOTHER_USER,
                                            str(socket_path)],
                               capture_output=True, text=True, timeout=60)
    finally:
        os.chmod(standby_dir, 0o700)
    assert asked.stdout.strip() == "answered:", (asked.stdout, asked.stderr)
    log = standby_dir / "standby.log"
    wait_until(lambda: "of another user (uid 65534)" in log.read_text(), 10,
               "the standby logged the refusal")
    assert (standby_dir / "standby.ready").exists(), "the standby still waits for its user"


_collected = {}


def collected(kc, msg_id):
    """Stream text seen so far for `msg_id` (reads what iopub has without waiting)."""
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=0.05)
        except Exception:
            break
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            _collected[msg_id] = _collected.get(msg_id, "") + msg["content"]["text"]
    return _collected.get(msg_id, "")


def test_a_killed_launcher_takes_its_standby_kernel_with_it(standby_dir, tmp_path):
    wait_for_standby(standby_dir)
    km, kc = start(tmp_path)
    try:
        serving = serving_pid(kc)
        assert serving != km.provisioner.pid
        # A restart with now=True kills the launcher (SIGKILL) and starts a kernel on the
        # same ports at once: the standby's kernel must let them go.
        km.restart_kernel(now=True)
        wait_until(lambda: ended(serving), 5, "the standby's kernel stopped")
        kc.wait_for_ready(timeout=120)
        assert run_cell(kc, "1 + 1").value() == "2"
    finally:
        stop(km, kc)


def test_a_kernel_with_another_environment_starts_its_own_engine(standby_dir, tmp_path):
    wait_for_standby(standby_dir)
    waiting = int((standby_dir / "standby.lock").read_text())
    env = dict(os.environ, TANDEM_BACKTRACE="1")
    km, kc = start(tmp_path, env=env)
    try:
        assert serving_pid(kc) == km.provisioner.pid
        # The standby said why, and stopped: one of the new environment may take its place.
        wait_until(lambda: ended(waiting), 10, "the refusing standby stopped")
    finally:
        stop(km, kc)
    log = (standby_dir / "standby.log").read_text()
    assert "TANDEM_BACKTRACE" in log, log


def test_a_kernel_launched_while_the_standby_starts_takes_over_that_start(standby_dir,
                                                                          tmp_path):
    # As with `tandem lab`: the standby starts with JupyterLab, and the first notebook's
    # kernel comes seconds later, before the standby's engine is up. It takes that engine
    # (no second one starts beside it) and waits only for the rest of its start.
    stop_standby(standby_dir)
    env = dict(os.environ)
    env.pop("PYTEST_CURRENT_TEST", None)
    subprocess.run([str(TANDEM), "kernel", "--standby"], env=env, check=True, timeout=30)
    lock, ready = standby_dir / "standby.lock", standby_dir / "standby.ready"
    wait_until(lambda: (standby_dir / "standby.sock").exists(), 10, "the standby listens")
    standby = int(lock.read_text())
    assert not ready.exists(), "the engine is still starting"
    started = time.monotonic()
    km, kc = start(tmp_path)
    try:
        took_info = time.monotonic() - started
        # No next standby yet: it would take CPU from the start this kernel waits for.
        assert int(lock.read_text()) == standby
        first = first_async_cell(kc)
        print(f"kernel launched as its standby starts: kernel_info {took_info:.2f} s, "
              f"first async cell reply - waits {first:.2f} s")
        assert serving_pid(kc) == standby, "the starting standby serves the kernel"
        where = run_cell(kc, 'println!("{}", std::env::current_dir().unwrap().display());')
        assert pathlib.Path(where.text().strip()).resolve() == tmp_path.resolve()
        # Once its engine is up, the launcher starts the next standby.
        wait_until(lambda: lock.exists() and lock.read_text().strip().isdigit()
                   and int(lock.read_text()) != standby, 30, "the next standby started")
    finally:
        stop(km, kc)


def test_a_standby_stops_with_the_jupyter_server_that_started_it(tmp_path):
    jupyter = subprocess.Popen(["sleep", "600"])  # plays the Jupyter server
    dir = tmp_path / "standby"
    env = dict(os.environ, TANDEM_STANDBY="on", TANDEM_STANDBY_DIR=str(dir),
               JPY_PARENT_PID=str(jupyter.pid))
    try:
        # It detaches at once; the lock file names the process that stays.
        with open(tmp_path / "log", "w") as log:
            subprocess.run([str(TANDEM), "kernel", "--standby"], env=env, check=True,
                           timeout=30, stderr=log)
        lock = dir / "standby.lock"
        wait_until(lambda: lock.exists() and lock.read_text().strip().isdigit(), 10,
                   "the standby named itself")
        standby = int(lock.read_text())
        # Jupyter stops while the standby's engine is still starting: it listens on its
        # socket from the moment that start begins (and says it is ready only later).
        wait_until(lambda: (dir / "standby.sock").exists(), 30, "the standby listens")
        assert not (dir / "standby.ready").exists(), "the engine is not up yet"
    finally:
        jupyter.kill()
        jupyter.wait()
    wait_until(lambda: ended(standby), 120, "the standby stopped with Jupyter")
    assert "Jupyter has stopped" in (tmp_path / "log").read_text()


# A client that is not a Jupyter server and sets no JPY_PARENT_PID (a script, an editor,
# a test harness): it starts a kernel and waits.
HARNESS = """
import json, os, socket, subprocess, sys, time
ports = []
for _ in range(5):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ports.append(s.getsockname()[1]); s.close()
names = ["shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"]
info = dict(zip(names, ports), ip="127.0.0.1", key="k", transport="tcp",
            signature_scheme="hmac-sha256")
path = os.path.join(sys.argv[2], "kernel.json")
with open(path, "w") as f:
    json.dump(info, f)
kernel = subprocess.Popen([sys.argv[1], "kernel", "--connection-file", path])
print(kernel.pid, flush=True)
time.sleep(600)
"""


def test_a_standby_stops_with_a_client_that_is_not_jupyter(tmp_path):
    dir = tmp_path / "standby"
    env = {k: v for k, v in os.environ.items() if k != "JPY_PARENT_PID"}
    env.update(TANDEM_STANDBY="on", TANDEM_STANDBY_DIR=str(dir))
    harness = subprocess.Popen([SYSTEM_PYTHON, "-c", HARNESS, str(TANDEM), str(tmp_path)],
                               env=env, stdout=subprocess.PIPE, text=True)
    try:
        kernel = int(harness.stdout.readline())
        # Once its engine is up, the kernel starts a standby for the next one.
        lock = dir / "standby.lock"
        wait_until(lambda: lock.exists() and lock.read_text().strip().isdigit(), 240,
                   "the kernel started a standby")
        standby = int(lock.read_text())
        assert b"--standby" in pathlib.Path(f"/proc/{standby}/cmdline").read_bytes()
    finally:
        harness.kill()
        harness.wait()
    # The client is gone (its kernel follows it on its own): so is the standby.
    wait_until(lambda: ended(kernel), 10, "the kernel stopped with its client")
    wait_until(lambda: ended(standby), 150, "the standby stopped with the client")
    assert "the client this standby was started for" in (dir / "standby.log").read_text()
