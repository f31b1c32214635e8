"""Shared fixtures: a real tandem kernel started by jupyter_client from the installed
kernelspec, and a helper that runs a cell and collects what it published, with arrival times."""
import contextlib
import os
import pathlib
import pwd
import shutil
import subprocess
import time
import uuid

import jupyter_client
import pytest

KERNEL_NAME = "tandem"
ROOT = pathlib.Path(__file__).resolve().parent.parent

# Each test's kernel starts its own engine, as with TANDEM_STANDBY=off: a standby kernel
# warming up in the background would take CPU from the tests that measure time, and would
# hand tests a kernel another test started. tests/test_standby.py turns standbys on.
os.environ["TANDEM_STANDBY"] = "off"


def ended(pid):
    """Whether process `pid` is gone, or has exited and waits to be reaped (a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def heartbeat_answers(km, timeout=2.0):
    """Whether the kernel's heartbeat socket echoes a ping within `timeout` seconds. (A
    client's `is_alive()` only looks at the process when a KernelManager owns it.)"""
    import zmq
    socket = zmq.Context.instance().socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    try:
        socket.connect(f"{km.transport}://{km.ip}:{km.hb_port}")
        ping = os.urandom(8)
        socket.send(ping)
        return bool(socket.poll(int(timeout * 1000))) and socket.recv() == ping
    finally:
        socket.close()


class Cell:
    """What one execute_request produced: the reply and the iopub messages, in order."""

    def __init__(self, reply, outputs, sent_at):
        self.reply = reply
        self.outputs = outputs  # list of (seconds after send, message)
        self.sent_at = sent_at

    @property
    def status(self):
        return self.reply["content"]["status"]

    def of_type(self, msg_type):
        return [m for _, m in self.outputs if m["msg_type"] == msg_type]

    def text(self, name="stdout"):
        return "".join(m["content"]["text"] for m in self.of_type("stream")
                       if m["content"]["name"] == name)

    def displays(self):
        """display_data messages the cell's code produced (not the footer or timeline)."""
        return [m for m in self.of_type("display_data") if kernel_role(m["content"]) is None]

    def footers(self):
        return [m for m in self.of_type("display_data") if is_footer(m["content"])]

    def timelines(self):
        """The timeline pictures tandem drew under the cell (one per cell that ran tasks)."""
        return [m for m in self.of_type("display_data")
                if kernel_role(m["content"]) == "timeline"]

    def value(self):
        results = self.of_type("execute_result")
        return results[0]["content"]["data"]["text/plain"] if results else None


def kernel_role(content):
    """What tandem itself added under a cell (`timing`, `timeline`), from the metadata."""
    return content.get("metadata", {}).get("tandem", {}).get("role")


def is_footer(content):
    """tandem's timing footer is a display_data marked in its metadata."""
    return kernel_role(content) == "timing"


def run_cell(kc, code, timeout=300, on_output=None, **options):
    """Executes `code` and waits for its reply and its idle status. `on_output`, if given,
    sees each of the request's iopub messages as it arrives."""
    sent_at = time.monotonic()
    msg_id = kc.execute(code, **options)
    outputs = []
    deadline = sent_at + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        outputs.append((time.monotonic() - sent_at, msg))
        if on_output:
            on_output(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    reply = kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
    assert reply["parent_header"]["msg_id"] == msg_id
    return Cell(reply, outputs, sent_at)


@contextlib.contextmanager
def own_kernel(**options):
    """A kernel and a blocking client of the caller's own, shut down after. `options` go
    to jupyter_client's start_new_kernel (env, stderr, ...)."""
    km, kc = jupyter_client.manager.start_new_kernel(kernel_name=KERNEL_NAME, **options)
    try:
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def kernel():
    """A kernel and a blocking client, shared by the tests of one module."""
    with own_kernel() as started:
        yield started


@pytest.fixture(scope="module")
def kc(kernel):
    return kernel[1]


# Runs a program as the user `nobody`: another local user of the machine.
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
SYSTEM_PYTHON = "/usr/bin/python3"  # readable by every user, unlike a virtualenv in /root


def template_dir():
    """Where the prebuilt crates are, for tests that move the user's cache folder: the
    template may live there (when the checkout sits below a folder others can write),
    and a kernel that no longer finds it would compile tokio again for minutes."""
    tandem = pathlib.Path(__file__).resolve().parent.parent / "target" / "release" / "tandem"
    return subprocess.run([str(tandem), "prebuild", "--show-dir"], capture_output=True,
                          text=True, check=True).stdout.strip()


# -- one installation for a class (tests/test_system_install.py, tests/test_classroom.py) --

NEEDS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("useradd") is None or shutil.which("runuser") is None,
    reason="installing for every user and making users needs root, useradd and runuser",
)
TEST_AREA = pathlib.Path("/opt/tandem-tests")  # tests/run puts the hub's venv and proxy here


def as_learner(user, *command, timeout=600, env=()):
    """Runs `command` as `user`, with a bare environment (no rustup or cargo home of
    root's): what a learner's own shell would have."""
    home = pwd.getpwnam(user).pw_dir
    bare = ["env", "-i", f"HOME={home}", f"USER={user}", "PATH=/usr/bin:/bin", "LANG=C.UTF-8"]
    return subprocess.run(
        ["runuser", "-u", user, "--", *bare, *env, *command],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/",
    )


@pytest.fixture(scope="session")
def installation():
    """`tandem install --system` into a fresh prefix, and two new local users (learners),
    all removed after the session. Yields (prefix, [learner, learner])."""
    tag = uuid.uuid4().hex[:6]
    prefix = TEST_AREA / f"prefix-{tag}"
    learners = [f"tdm{tag}a", f"tdm{tag}b"]
    made = []
    TEST_AREA.mkdir(mode=0o755, exist_ok=True)
    try:
        installed = subprocess.run(
            [str(ROOT / "target" / "release" / "tandem"), "install", f"--system={prefix}"],
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert installed.returncode == 0, installed.stderr
        for user in learners:
            subprocess.run(["useradd", "-m", "-s", "/bin/sh", user], check=True)
            made.append(user)
        yield prefix, learners
    finally:
        for user in made:
            remove_user(user)
        shutil.rmtree(prefix, ignore_errors=True)


def remove_user(user):
    """Kills every process of `user`, then removes the user and their home."""
    subprocess.run(["pkill", "-KILL", "-u", user], check=False)
    for _ in range(300):  # userdel refuses a user whose processes still run
        if subprocess.run(["pgrep", "-u", user], capture_output=True).returncode:
            break
        time.sleep(0.1)
    removed = subprocess.run(["userdel", "-f", "-r", user], capture_output=True, text=True)
    assert removed.returncode in (0, 12), removed.stderr  # 12: no mail spool
