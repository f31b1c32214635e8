"""A class under a real JupyterHub: tandem installed once (`tandem install --system`), a hub
on 127.0.0.1 with `classroom/jupyterhub_config.py` and the default LocalProcessSpawner, and
two new local users whose servers and kernels run as themselves.

Each learner, with their own token, opens lesson 3 from their home (the hub copied it
there) and runs it over the kernel websocket at the same time as the other; both get the
lesson's figures, footers and timelines. Then: one learner cannot read, write or signal
the other's connection files, standby or kernels, and one learner's endless loop or flood
of output leaves the other's warm cell within twice its unloaded time, and a cell that
takes 30 GB or forks without end meets its own limit with a clear error; lesson 5's check,
on a machine made busy, still passes the solution and not the stub. Needs root and the
hub that tests/run installs into /opt/tandem-tests; skipped otherwise.
"""
import concurrent.futures
import contextlib
import datetime
import json
import os
import pathlib
import pwd
import secrets
import socket
import statistics
import subprocess
import threading
import time
import uuid

import nbformat
import pytest
import requests
import websocket

from conftest import NEEDS_ROOT, TEST_AREA, as_learner
from test_notebooks import assert_async_waits_overlap_on_one_thread, role

ROOT = pathlib.Path(__file__).resolve().parents[1]
HUB_ENV = TEST_AREA / "venv"
PROXY = TEST_AREA / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy"
LESSON = "tandem-lessons/03-asynchronous.ipynb"

pytestmark = [
    NEEDS_ROOT,
    pytest.mark.skipif(
        not (HUB_ENV / "bin" / "jupyterhub").exists() or not PROXY.exists(),
        reason="tests/run installs the hub (tests/hub-requirements.txt) and its proxy",
    ),
]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- the hub -------------------------------------------------------------------------------

TEST_CONFIG = """\
# The test's own part: ports, the learners, a password-less login and a token for the test.
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.ConfigurableHTTPProxy.pid_file = {state!r} + "/proxy.pid"
c.JupyterHub.db_url = "sqlite:///" + {state!r} + "/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = {state!r} + "/cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = set({learners!r})
c.JupyterHub.services = [{{"name": "teacher", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [
    {{
        "name": "teacher",
        "scopes": ["admin:users", "admin:servers", "tokens", "access:servers"],
        "services": ["teacher"],
    }}
]
load_subconfig({classroom!r})
"""


class Hub:
    """A running JupyterHub, the test's service token, and the hub's log (where the
    learners' servers and kernels write theirs)."""

    def __init__(self, url, token, process, log=None):
        self.url, self.token, self.process, self.log = url, token, process, log

    def api(self, method, path, token=None, **options):
        headers = {"Authorization": f"token {token or self.token}"}
        reply = requests.request(method, self.url + path, headers=headers, timeout=60, **options)
        assert reply.status_code < 400, f"{method} {path}: {reply.status_code} {reply.text}"
        return reply.json() if reply.content else None


def wait_for(ready, what, timeout=180):
    """Waits until `ready()` is true (each try is one request or one file look-up)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@contextlib.contextmanager
def running_hub(prefix, users, state):
    """JupyterHub with classroom/jupyterhub_config.py for the installation at `prefix` and
    the local `users`, its database, proxy and log in the private folder `state`; stopped,
    with the users' servers, after. (tests/bench/classroom.py starts it too.)"""
    port, token = free_port(), secrets.token_hex(32)
    config = state / "jupyterhub_config.py"
    config.write_text(TEST_CONFIG.format(
        port=port, hub_port=free_port(), proxy_port=free_port(), proxy=str(PROXY),
        state=str(state), learners=users, token=token,
        classroom=str(ROOT / "classroom" / "jupyterhub_config.py"),
    ))
    env = {**os.environ, "TANDEM_PREFIX": str(prefix), "TANDEM_HUB_ENV": str(HUB_ENV),
           "PATH": f"{HUB_ENV / 'bin'}:/usr/bin:/bin"}
    env.pop("TANDEM_STANDBY", None)  # the learners' kernels run as they would in class
    with open(state / "hub.log", "wb") as log:
        process = subprocess.Popen([str(HUB_ENV / "bin" / "jupyterhub"), "-f", str(config)],
                                   cwd=state, env=env, stdout=log, stderr=subprocess.STDOUT)
    started = Hub(f"http://127.0.0.1:{port}", token, process, state / "hub.log")

    def answers():
        assert process.poll() is None, (state / "hub.log").read_text()
        with contextlib.suppress(requests.ConnectionError):
            return requests.get(started.url + "/hub/api/", timeout=5).status_code == 200
        return False

    try:
        wait_for(answers, "the hub to answer")
        yield started
    finally:
        for user in users:
            with contextlib.suppress(Exception):
                started.api("DELETE", f"/hub/api/users/{user}/server")
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def hub(installation, tmp_path_factory):
    prefix, learners = installation
    state = tmp_path_factory.mktemp("hub")
    os.chmod(state, 0o700)
    with running_hub(prefix, learners, state) as started:
        yield started


class Learner:
    """One learner's server, reached with the learner's own token."""

    def __init__(self, hub, name):
        self.hub, self.name = hub, name
        hub.api("POST", f"/hub/api/users/{name}/server")
        wait_for(lambda: hub.api("GET", f"/hub/api/users/{name}")["servers"]
                 .get("", {}).get("ready"), f"{name}'s server")
        self.token = hub.api("POST", f"/hub/api/users/{name}/tokens",
                             json={"note": "classroom test", "expires_in": 3600})["token"]
        self.base = f"/user/{name}"

    def api(self, method, path, **options):
        return self.hub.api(method, self.base + path, token=self.token, **options)

    def open(self, path):
        """Opens a notebook as JupyterLab does: a session with a tandem kernel for it."""
        session = self.api("POST", "/api/sessions", json={
            "path": path, "type": "notebook", "name": pathlib.Path(path).name,
            "kernel": {"name": "tandem"}})
        return KernelSocket(self, session["kernel"]["id"])


class KernelSocket:
    """Jupyter messages over a kernel's websocket, as the browser sends them."""

    def __init__(self, learner, kernel_id):
        self.learner, self.kernel_id = learner, kernel_id
        url = learner.hub.url.replace("http", "ws", 1)
        self.ws = websocket.create_connection(
            f"{url}{learner.base}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4()}",
            header=[f"Authorization: token {learner.token}"], timeout=900)
        self.session = uuid.uuid4().hex

    def execute(self, code, timeout=900, on_output=None):
        """Runs `code`; returns (reply content, nbformat outputs, seconds to the reply).
        `on_output`, if given, sees each output as it arrives."""
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": self.session,
                       "username": self.learner.name, "version": "5.3",
                       "date": datetime.datetime.now(datetime.timezone.utc).isoformat()},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }))
        sent = time.monotonic()
        outputs, reply, idle, replied_after = [], None, False, None
        while reply is None or not idle:
            self.ws.settimeout(max(1.0, sent + timeout - time.monotonic()))
            msg = json.loads(self.ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "execute_reply":
                reply, replied_after = content, time.monotonic() - sent
            elif kind == "status":
                idle = content["execution_state"] == "idle"
            elif kind == "stream":
                outputs.append(nbformat.v4.new_output("stream", name=content["name"],
                                                      text=content["text"]))
            elif kind in ("display_data", "execute_result"):
                outputs.append(nbformat.v4.new_output("display_data", data=content["data"],
                                                      metadata=content.get("metadata", {})))
            elif kind == "error":
                outputs.append(nbformat.v4.new_output("error", ename=content["ename"],
                                                      evalue=content["evalue"],
                                                      traceback=content["traceback"]))
            if on_output and kind in ("stream", "display_data", "execute_result", "error"):
                on_output(outputs[-1])
        return reply, outputs, replied_after

    def run_notebook(self, path):
        """Runs every code cell of the learner's copy of `path`, as "Run all" does."""
        nb = nbformat.from_dict(self.learner.api("GET", f"/api/contents/{path}")["content"])
        for cell in nb.cells:
            if cell.cell_type == "code":
                reply, cell.outputs, _ = self.execute(cell.source)
                assert reply["status"] == "ok", (self.learner.name, cell.id, cell.outputs)
        return nb

    def interrupt(self):
        self.learner.api("POST", f"/api/kernels/{self.kernel_id}/interrupt")

    def close(self):
        self.ws.close()


@pytest.fixture(scope="module")
def learners(hub, installation):
    _, names = installation
    with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
        started = list(pool.map(lambda name: Learner(hub, name), names))
    yield started


@pytest.fixture(scope="module")
def lesson_runs(learners):
    """Both learners run lesson 3 at once, each in a kernel of their own."""
    kernels = [learner.open(LESSON) for learner in learners]
    with concurrent.futures.ThreadPoolExecutor(len(kernels)) as pool:
        notebooks = list(pool.map(lambda kernel: kernel.run_notebook(LESSON), kernels))
    yield list(zip(learners, kernels, notebooks))
    for kernel in kernels:
        kernel.close()


# -- the lesson, for each learner -----------------------------------------------------------

def test_each_learner_runs_the_lesson_copied_into_their_home_at_once(lesson_runs):
    for learner, _, nb in lesson_runs:
        home = pathlib.Path(pwd.getpwnam(learner.name).pw_dir)
        assert (home / LESSON).stat().st_uid == pwd.getpwnam(learner.name).pw_uid
        code = [cell for cell in nb.cells if cell.cell_type == "code"]
        for cell in code:
            footers = [o for o in cell.outputs if role(o) == "timing"]
            assert len(footers) == 1 and "run" in footers[0]["data"]["text/plain"], cell.id
        assert_async_waits_overlap_on_one_thread(nb)


def resident_mb(user):
    """Resident memory of each of `user`'s processes, by what it is (MB)."""
    sizes = {}
    pids = subprocess.run(["pgrep", "-u", user], capture_output=True, text=True).stdout.split()
    for pid in pids:
        with contextlib.suppress(OSError, StopIteration):
            command = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            with open(f"/proc/{pid}/status") as status:
                rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
            words = [word.decode(errors="replace") for word in command]
            kind = ("server" if any("jupyterhub-singleuser" in w for w in words)
                    else "standby" if "--standby" in words
                    else "kernel" if "kernel" in words
                    else "engine" if pathlib.Path(words[0]).name == "tandem"  # a cell's process
                    else pathlib.Path(words[0]).name)
            sizes[kind] = sizes.get(kind, 0) + rss / 1024
    return sizes


def test_each_kernel_runs_as_its_learner_from_the_installation(lesson_runs, installation):
    prefix, _ = installation
    for learner, _, _ in lesson_runs:
        kernels = subprocess.run(["pgrep", "-u", learner.name, "-f", f"{prefix}/bin/tandem kernel"],
                                 capture_output=True, text=True).stdout.split()
        assert kernels, f"no tandem kernel of {learner.name}'s runs from {prefix}"
        sizes = resident_mb(learner.name)
        print(f"{learner.name}: resident MB " + ", ".join(
            f"{kind} {mb:.0f}" for kind, mb in sorted(sizes.items())) +
            f"; {sum(sizes.values()):.0f} in all")
        assert sizes.get("kernel", 0) > 0 and sizes.get("server", 0) > 0, sizes


# -- isolation ------------------------------------------------------------------------------

def private_files_of(user):
    """The learner's connection files, standby folders and kernel processes."""
    home = pathlib.Path(pwd.getpwnam(user).pw_dir)
    connection_files = sorted((home / ".local/share/jupyter/runtime").glob("kernel-*.json"))
    standby = sorted((home / ".cache/tandem").glob("standby-*"))
    pids = subprocess.run(["pgrep", "-u", user, "-f", "tandem kernel"],
                          capture_output=True, text=True).stdout.split()
    return connection_files, standby, pids


def test_a_learner_cannot_read_write_or_signal_anothers_kernels(lesson_runs):
    (first, _, _), (second, _, _) = lesson_runs
    connection_files, standby, pids = private_files_of(second.name)
    assert connection_files and standby and pids, (connection_files, standby, pids)
    for path in connection_files:
        read = as_learner(first.name, "cat", str(path))
        assert read.returncode != 0 and "Permission denied" in read.stderr, read
    for folder in standby:
        listed = as_learner(first.name, "ls", str(folder))
        assert listed.returncode != 0 and "Permission denied" in listed.stderr, listed
        planted = as_learner(first.name, "touch", str(folder / "planted"))
        assert planted.returncode != 0, planted
        assert not (folder / "planted").exists()
    for pid in pids:
        signalled = as_learner(first.name, "kill", "-0", pid)
        assert signalled.returncode != 0 and "not permitted" in signalled.stderr, signalled
    # The lessons the hub copied are the learner's answers: private, in a home open to all.
    answers = pathlib.Path(pwd.getpwnam(second.name).pw_dir) / LESSON
    read = as_learner(first.name, "cat", str(answers))
    assert read.returncode != 0 and "Permission denied" in read.stderr, read


def test_a_learners_next_notebook_is_taken_by_their_standby(hub, lesson_runs):
    """The standby a learner's kernel started (same installation, same environment)
    takes their next notebook, whose first cell then does not wait for an engine."""
    _, (second, _, _) = lesson_runs
    wait_for(standbys_ready([second.name]), "the learner's standby")
    before = len(hub.log.read_bytes())
    kernel = second.open("tandem-lessons/01-start-here.ipynb")
    try:
        reply, _, _ = kernel.execute(WARM_CELL)
        assert reply["status"] == "ok"
    finally:
        kernel.close()
    since = hub.log.read_bytes()[before:].decode(errors="replace")
    assert "kernel handed to the standby process" in since, since[-3000:]


# -- one learner's runaway cell and another's warm cell ------------------------------------

WARM_CELL = "let warm = 2 + 1;\nwarm"
RUNAWAY = {
    "endless loop": 'println!("spinning");\nlet mut n = 0u64;\n'
                    "loop { n = std::hint::black_box(n + 1); }",
    "flood of output": 'loop { println!("{}", "flood ".repeat(16)); }',
}


def warm_latency(kernel, runs=5):
    """The median time from sending the warm cell to its reply."""
    times = []
    for _ in range(runs):
        reply, _, seconds = kernel.execute(WARM_CELL)
        assert reply["status"] == "ok"
        times.append(seconds)
    return statistics.median(times)


def standbys_ready(users):
    """Each learner's standby engine is up (warming one takes CPU from every learner)."""
    def ready():
        for user in users:
            home = pathlib.Path(pwd.getpwnam(user).pw_dir)
            if not list((home / ".cache/tandem").glob("standby-*/standby.ready")):
                return False
        return True
    return ready


@contextlib.contextmanager
def running_away(kernel, code):
    """Runs `code` in `kernel` from its first line of output until the block ends, then
    interrupts it; yields the future of its (reply, outputs, seconds)."""
    running = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        ran = pool.submit(kernel.execute, code, on_output=lambda output: running.set())
        assert running.wait(timeout=120), "the runaway cell started"
        try:
            yield ran
        finally:
            kernel.interrupt()
            ran.result(timeout=120)


@pytest.mark.parametrize("runaway", RUNAWAY, ids=lambda name: name.replace(" ", "-"))
def test_a_runaway_cell_leaves_another_learners_warm_cell_at_most_twice_as_slow(
        lesson_runs, runaway):
    (first, first_kernel, _), (second, second_kernel, _) = lesson_runs
    wait_for(standbys_ready([first.name, second.name]), "the learners' standbys")
    warm_latency(second_kernel, runs=1)
    unloaded = warm_latency(second_kernel)

    with running_away(first_kernel, RUNAWAY[runaway]) as ran:
        loaded = warm_latency(second_kernel)
    reply, outputs, took = ran.result()
    shown = sum(len(o.text) for o in outputs if o.output_type == "stream")
    print(f"{runaway}: warm cell {unloaded:.3f} s unloaded, {loaded:.3f} s loaded; "
          f"the runaway cell showed {shown / 1e6:.1f} MB in {took:.1f} s")
    assert reply["status"] == "error", "the runaway cell was interrupted"
    if runaway == "flood of output":
        told = [o for o in outputs if o.get("name") == "stderr" and "TANDEM_OUTPUT_RATE" in o.text]
        assert len(told) == 1, "the flooding learner is told once that their output is paced"
        dropped = [o for o in outputs if "rate exceeded" in o.get("text", "")]  # IOPub data, msg
        assert not dropped, "the pace stays under Jupyter's own limit: nothing dropped"
    assert loaded <= 2 * unloaded, f"{loaded:.3f} s under load, {unloaded:.3f} s without"
    after, _, _ = first_kernel.execute(WARM_CELL)
    assert after["status"] == "ok", "the interrupted learner's kernel goes on"


# -- limits: a learner's cell meets its own limit, not the machine's ------------------------

MEMORY_HOG = """let mut held: Vec<Vec<u8>> = Vec::new();
for _ in 0..30 * 1024 { held.push(vec![0u8; 1 << 20]); }  // 30 GB, a MB at a time
held.len()"""
FORK_BOMB = """let mut started = Vec::new();
loop { started.push(std::process::Command::new("sleep").arg("600").spawn().unwrap()); }"""


def error_text(outputs):
    return "\n".join("\n".join(o.traceback) for o in outputs if o.output_type == "error")


def test_a_cell_that_takes_30_gb_meets_the_memory_limit_and_others_go_on(lesson_runs):
    (first, first_kernel, _), (_, second_kernel, _) = lesson_runs
    reply, outputs, _ = first_kernel.execute(MEMORY_HOG)
    assert reply["status"] == "error"
    told = error_text(outputs)
    assert "memory limit" in told and "TANDEM_MEMORY_LIMIT" in told and "2.0 GiB" in told, told
    assert second_kernel.execute(WARM_CELL)[0]["status"] == "ok", "the other learner goes on"
    assert first_kernel.execute(WARM_CELL)[0]["status"] == "ok", "and so does this one"


def test_a_fork_bomb_meets_the_process_limit_and_others_go_on(lesson_runs):
    (first, first_kernel, _), (_, second_kernel, _) = lesson_runs
    try:
        reply, outputs, _ = first_kernel.execute(FORK_BOMB)
        assert reply["status"] == "error"
        told = error_text(outputs)
        assert "process limit" in told and "TANDEM_PROCESS_LIMIT" in told, told
        assert second_kernel.execute(WARM_CELL)[0]["status"] == "ok", "the other learner goes on"
    finally:
        subprocess.run(["pkill", "-KILL", "-u", first.name, "-x", "sleep"], check=False)
    # (The killed sleeps stay zombies of the engine until it ends: no one waits for them.)
    assert first_kernel.execute(WARM_CELL)[0]["status"] == "ok", "the bomb's kernel goes on"


# -- timing claims under load ----------------------------------------------------------------

def lesson_cells(path, *ids):
    nb = nbformat.read(path, as_version=4)
    return [next(cell.source for cell in nb.cells if cell.id == wanted) for wanted in ids]


def test_a_busy_machine_neither_fails_a_right_answer_nor_passes_a_wrong_one(lesson_runs):
    """Lesson 5's exercise (two batches on two threads), answered while the other learner's
    cell spins on a core: the solution still passes, the stub still does not."""
    (_, first_kernel, _), (second, second_kernel, _) = lesson_runs
    setup, stub, check = lesson_cells(ROOT / "notebooks" / "05-cpu-vs-io.ipynb",
                                      "05-01", "05-13", "05-14")
    (solution,) = lesson_cells(ROOT / "notebooks" / "solutions" / "05-cpu-vs-io.ipynb", "05-13")
    verdicts = {}
    with running_away(first_kernel, RUNAWAY["endless loop"]):
        assert second_kernel.execute(setup)[0]["status"] == "ok"
        for name, answer in (("solution", solution), ("stub", stub)):
            assert second_kernel.execute(answer)[0]["status"] == "ok", name
            reply, outputs, _ = second_kernel.execute(check)
            verdicts[name] = "".join(o.text for o in outputs if o.output_type == "stream")
    assert "✅ PASS" in verdicts["solution"], verdicts
    assert "💡 NOT YET" in verdicts["stub"] and "✅ PASS" not in verdicts["stub"], verdicts
