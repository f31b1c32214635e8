"""Safe on a shared machine: what another local user leaves in shared places (a cargo
configuration in a parent folder of the build, a scratch folder made in advance) changes
nothing, and what a cell prints cannot pass for tandem's own marker lines.

One kernel serves the module, started the way an attacked user's would be: with TMPDIR
pointing at a folder that holds a planted `.cargo/config.toml` (as `/tmp` can), with
tandem's private folder made in advance, open to everyone, holding another planted one,
and with another user listening on the socket where the kernel looks for a standby.
"""
import fcntl
import os
import pathlib
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

import zmq
from jupyter_client.session import Session

from conftest import AS_NOBODY, SYSTEM_PYTHON, ended, own_kernel, run_cell, template_dir

# A short wait for clients that stop reading iopub, so the tests of it are quick; long
# enough for the backlog test's client, which reads nothing until the cell is held back.
STALL_SECONDS = 4

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


LISTEN_AS_ANOTHER_USER = """
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o777)
s.listen(4)
print("listening", flush=True)
s.settimeout(120)
peer, _ = s.accept()
peer.settimeout(10)
heard = b""
try:
    peer.sendall(b'{"adopted": true, "reason": "", "pid": 1}\\n')
except OSError:
    pass
while True:
    try:
        chunk = peer.recv(4096)
    except socket.timeout:
        break
    if not chunk:
        break
    heard += chunk
print("heard %d bytes" % len(heard), flush=True)
"""


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    """(kernel client, the kernel's log, the file the planted program would create, the
    private folder tandem was given, the kernel manager, the other user's listener)."""
    base = tmp_path_factory.mktemp("attacked")
    ran = base / "the-planted-program-ran"
    evil = base / "evil.sh"
    evil.write_text(f"#!/bin/sh\ntouch {ran}\nexit 1\n")
    evil.chmod(0o755)
    # A shared temporary folder with another user's cargo configuration in it, and a
    # rustup toolchain file that names a "toolchain" of theirs: the kernel runs there.
    tmpdir = base / "tmp"
    (tmpdir / ".cargo").mkdir(parents=True)
    (tmpdir / ".cargo" / "config.toml").write_text(PLANTED_CONFIG.format(evil=evil))
    (base / "toolchain" / "bin").mkdir(parents=True)
    for tool in ("rustc", "cargo"):
        shutil.copy(evil, base / "toolchain" / "bin" / tool)
    (tmpdir / "rust-toolchain.toml").write_text(
        f'[toolchain]\npath = "{base / "toolchain"}"\n')
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
    # Another user listens where the kernel looks for a standby, in a folder it reached
    # while it was open (in the shared temporary folder, where the other user can go).
    foreign = pathlib.Path(tempfile.mkdtemp(prefix="tandem-foreign-standby-"))
    foreign.chmod(0o777)
    listener = subprocess.Popen(AS_NOBODY + [SYSTEM_PYTHON, "-c", LISTEN_AS_ANOTHER_USER,
                                             str(foreign / "standby.sock")],
                                stdout=subprocess.PIPE, text=True)
    assert listener.stdout.readline().strip() == "listening"
    foreign.chmod(0o700)
    # Held here, the standby lock says a standby is alive: the kernel starts none.
    lock = open(foreign / "standby.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    log_path = base / "kernel.log"
    # A short wait for clients that stop reading iopub, so the tests of it are quick; no
    # pace for printed text, so that hundreds of MB show what a slow client does.
    env = dict(os.environ, TMPDIR=str(tmpdir), XDG_CACHE_HOME=str(cache),
               TANDEM_TEMPLATE_DIR=template_dir(),
               TANDEM_IOPUB_STALL_SECONDS=str(STALL_SECONDS), TANDEM_OUTPUT_RATE="off",
               TANDEM_STANDBY="on", TANDEM_STANDBY_DIR=str(foreign))
    try:
        with open(log_path, "w") as log, \
                own_kernel(env=env, stderr=log, cwd=str(tmpdir)) as (km, kc):
            yield kc, log_path, ran, cache, km, listener
    finally:
        listener.kill()
        listener.wait()
        lock.close()
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(foreign, ignore_errors=True)


def test_planted_cargo_configurations_change_nothing(attacked):
    kc, log_path, ran, cache = attacked[:4]
    cell = run_cell(kc, 'println!("{}", option_env!("TANDEM_PLANTED").is_some()); 40 + 2')
    assert cell.status == "ok", cell.reply["content"]
    assert cell.value() == "42"
    assert cell.text().strip() == "false", "the planted [env] did not reach the cell"
    assert not ran.exists(), "the planted linker, rustc-wrapper or toolchain ran"

    # The kernel compiled in a fresh folder of its own, 0700, inside a fresh private root.
    where = run_cell(kc, 'println!("{}", std::env::var("EVCXR_TMPDIR").unwrap());')
    build_dir = pathlib.Path(where.text().strip())
    root = cache / "tandem"
    assert build_dir.parent.parent == root / "kernels", build_dir
    for private in (root, root / "kernels", build_dir.parent):
        mode = stat.S_IMODE(private.stat().st_mode)
        assert mode == 0o700, (private, oct(mode))
    assert not (root / ".cargo" / "config.toml").exists(), "the planted config is not there"
    # What was there before was set aside, not used, and the log says so.
    aside = [p for p in cache.iterdir() if p.name.startswith("tandem.untrusted-")]
    assert len(aside) == 1, list(cache.iterdir())
    assert (aside[0] / ".cargo" / "config.toml").exists()
    log = log_path.read_text()
    assert "was not this user's private folder" in log and "nothing in it is used" in log, log


def test_a_kernel_gives_nothing_to_a_standby_socket_of_another_user(attacked):
    kc, log_path, km, listener = attacked[0], attacked[1], attacked[4], attacked[5]
    # It asked the socket, found another user there, and started its own engine.
    pid = run_cell(kc, 'println!("{}", std::os::unix::process::parent_id());')
    assert int(pid.text().strip()) == km.provisioner.pid, "it runs its own engine"
    heard, _ = listener.communicate(timeout=60)
    assert heard.strip() == "heard 0 bytes", "the kernel sent nothing to the other user"
    assert "is not this user's" in log_path.read_text()


def test_the_events_channel_gives_away_no_secret(attacked):
    # The poll recorder's channel is an abstract socket, whose name every user can list in
    # /proc/net/unix: it must not be (or contain) the key that marks tandem's own lines.
    kc = attacked[0]
    engine = run_cell(kc, 'tokio::spawn(async {}).await.unwrap();\n'
                          'println!("{}", std::process::id());')
    assert engine.status == "ok", engine.reply["content"]
    environ = pathlib.Path(f"/proc/{engine.text().strip()}/environ").read_bytes()
    key, = [entry.split(b"=", 1)[1].decode() for entry in environ.split(b"\0")
            if entry.startswith(b"TANDEM_MARKER_KEY=")]
    sockets = pathlib.Path("/proc/net/unix").read_text()
    assert "@tandem-events-" in sockets, "the channel is there"
    assert key not in sockets


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


# More messages than a subscriber's queues hold (1,000 in the kernel, 1,000 in the client,
# and the sockets' buffers): one display per iteration, each released by the line printed
# after it.
MANY_MESSAGES = 5_000
MANY_DISPLAYS = (f"for i in 0..{MANY_MESSAGES} {{\n"
                 '    println!("EVCXR_BEGIN_CONTENT text/plain\\nshown {i}\\nEVCXR_END_CONTENT");\n'
                 '    println!("after {i}");\n'
                 "}")


def subscriber(km):
    """A second iopub subscriber of our own, which reads only when told to."""
    socket = zmq.Context.instance().socket(zmq.SUB)
    socket.setsockopt(zmq.RCVHWM, 10)
    socket.setsockopt(zmq.SUBSCRIBE, b"")
    socket.connect(f"tcp://{km.ip}:{km.iopub_port}")
    session = Session(key=km.session.key)
    # Subscribed once the kernel's welcome arrives on it (JEP 65).
    while True:
        _, frames = session.feed_identities(socket.recv_multipart())
        if session.deserialize(frames)["header"]["msg_type"] == "iopub_welcome":
            return socket, session


def read_until_idle(socket, session, msg_id, timeout=60):
    messages = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not socket.poll(1000):
            continue
        _, frames = session.feed_identities(socket.recv_multipart())
        msg = session.deserialize(frames)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return messages
    raise AssertionError("no idle status in time")


def shown(messages):
    return [m["content"]["data"]["text/plain"] for m in messages
            if m["msg_type"] == "display_data" and "text/plain" in m["content"]["data"]
            and m["content"]["data"]["text/plain"].startswith("shown ")]


BACKLOG_LINES = 50_000  # of 10,001 bytes each: 500 MB
BACKLOG_CELL = """
let pad = "x".repeat(9_990);
for i in 0..%d_u64 {
    println!("{i:09} {pad}");
    if i %% 100 == 99 {
        std::fs::write("%s.new", ((i + 1) * 10_001).to_string()).unwrap();
        std::fs::rename("%s.new", "%s").unwrap();
    }
}
eprintln!("all printed");
"""


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def test_a_500_mb_backlog_arrives_whole_before_idle_in_bounded_memory(attacked, tmp_path):
    """A client that reads slower than the cell prints holds the cell back; nothing is
    dropped and the kernel does not hold the difference in memory. (Before the tests that
    make iopub let a client go: while letting go lasts, every cell's output ends with a
    notice that a client may have missed some, and output that never pauses for 2 s keeps
    it going.)"""
    kc, log_path, km = attacked[0], attacked[1], attacked[4]
    kernel = km.provisioner.pid
    progress = tmp_path / "printed"
    msg_id = kc.execute(BACKLOG_CELL % (BACKLOG_LINES, progress, progress, progress))

    def printed():
        try:
            return int(progress.read_text())
        except (FileNotFoundError, ValueError):
            return 0

    # The client reads nothing until the cell stops getting further ahead of it (a second
    # without progress), or has printed so far ahead that the kernel must be holding it.
    limit = 300e6
    deadline = time.monotonic() + 120
    while not progress.exists():
        assert time.monotonic() < deadline, "the cell did not start"
        time.sleep(0.02)
    # (Compiling the cell grew the kernel already: evcxr analyses it in the kernel's process.)
    rss_before = rss_mb(kernel)
    last, since = printed(), time.monotonic()
    while time.monotonic() - since < 1.0 and last < limit:
        time.sleep(0.05)
        if printed() != last:
            last, since = printed(), time.monotonic()
    held_back_at = last
    assert held_back_at < limit, (
        f"the cell printed {held_back_at / 1e6:.0f} MB while the client read nothing: "
        "the kernel held it all in memory")
    rss_held = rss_mb(kernel)

    # Now read everything, as fast as the client can.
    started = time.monotonic()
    texts, errors, count, peak = [], [], 0, rss_held
    while True:
        msg = kc.get_iopub_msg(timeout=120)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        count += 1
        if count % 500 == 0:
            peak = max(peak, rss_mb(kernel))
        if msg["msg_type"] == "stream":
            (texts if msg["content"]["name"] == "stdout" else errors).append(
                msg["content"]["text"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    took = time.monotonic() - started
    reply = kc.get_shell_msg(timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]
    lines = "".join(texts).split("\n")
    assert lines[-1] == "" and len(lines) == BACKLOG_LINES + 1, len(lines)
    for i, line in enumerate(lines[:-1]):
        assert line[:10] == f"{i:09} " and len(line) == 10_000, (i, line[:20])
    # stderr printed after the backlog came before idle too.
    assert "".join(errors) == "all printed\n", "".join(errors)[:300]
    assert "the cell waits for it" in log_path.read_text()
    print(f"500 MB backlog: the cell was held at {held_back_at / 1e6:.0f} MB printed while "
          f"the client read nothing; then all {len(texts)} stream messages in {took:.1f} s; "
          f"kernel RSS {rss_before:.0f} MB as it began, {rss_held:.0f} MB held, "
          f"{peak:.0f} MB at most while sending")
    # Held: 32 MiB waiting, 1,000 messages in libzmq, evcxr's 1,024 lines; and the allocator
    # keeps some. Without a bound, the kernel would hold what the client had not read.
    assert peak - rss_before < 250, "the kernel's memory grew with the backlog"


ONE_LONG_LINE_CELL = """
let piece = "é".repeat(50_000) + "x";
for _ in 0..%d { print!("{piece}"); }
println!();
print!("the end, without a newline");
"""


def test_a_400_mb_line_without_end_arrives_whole_in_bounded_memory(attacked):
    """A line is passed on in pieces (64 KiB each, joined again without a break), so no
    one holds it whole: not the engine's filter, not evcxr's reader, not the kernel."""
    kc, km = attacked[0], attacked[4]
    kernel = km.provisioner.pid
    pieces = 4_000  # of 100,001 bytes: 400 MB on one line
    # The same cell, short, first: compiling such a cell grows the kernel (evcxr analyses
    # it in the kernel's process), which is not what is measured.
    assert run_cell(kc, ONE_LONG_LINE_CELL % 10).status == "ok"
    rss_before, peak = rss_mb(kernel), 0
    msg_id = kc.execute(ONE_LONG_LINE_CELL % pieces)
    received, count, tail = 0, 0, ""
    breaks = []
    while True:
        msg = kc.get_iopub_msg(timeout=120)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        count += 1
        if count % 200 == 0:
            peak = max(peak, rss_mb(kernel))
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            text = msg["content"]["text"]
            breaks += [received + len(text[:at]) for at, c in enumerate(text) if c == "\n"]
            received += len(text)
            tail = (tail + text)[-100:]
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    reply = kc.get_shell_msg(timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]
    print(f"a {pieces * 100_001 / 1e6:.0f} MB line: kernel RSS {rss_before:.0f} MB before, "
          f"{peak:.0f} MB at most")
    assert peak - rss_before < 250, "the kernel held the line whole"
    # The one line whole (no break inserted), then the cell's last words, in this cell.
    assert breaks[0] == pieces * 50_001, breaks[:3]
    assert tail.endswith("x\nthe end, without a newline\n"), tail


def test_a_slow_iopub_subscriber_loses_nothing(attacked):
    kc, km = attacked[0], attacked[4]
    slow, session = subscriber(km)
    ran = {}
    # The kernel's own client reads as usual, on a thread; ours is away for a while, but
    # back before the kernel gives up on it.
    reading = threading.Thread(target=lambda: ran.update(cell=run_cell(kc, MANY_DISPLAYS)))
    try:
        reading.start()
        time.sleep(STALL_SECONDS / 4)
        msg_id = None
        while msg_id is None:  # the request's id, from its busy status
            _, frames = session.feed_identities(slow.recv_multipart())
            msg = session.deserialize(frames)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "busy":
                msg_id = msg["parent_header"]["msg_id"]
        messages = read_until_idle(slow, session, msg_id)
        reading.join(timeout=120)
    finally:
        slow.close(linger=0)
    assert shown(messages) == [f"shown {i}" for i in range(MANY_MESSAGES)]
    assert ran["cell"].status == "ok", ran["cell"].reply["content"]
    assert "may have missed" not in ran["cell"].text("stderr")


def test_a_subscriber_that_never_reads_cannot_stall_the_kernel(attacked):
    kc, km = attacked[0], attacked[4]
    stuck, _ = subscriber(km)
    try:
        started = time.monotonic()
        cell = run_cell(kc, MANY_DISPLAYS, timeout=120)
        took = time.monotonic() - started
        assert cell.status == "ok", cell.reply["content"]
        # The reading client got everything; the stuck one was let go after the limit,
        # and the output says so under the cell, before its idle status (where frontends
        # stop listening), to every client: iopub is broadcast.
        assert shown(m for _, m in cell.outputs) == [f"shown {i}" for i in range(MANY_MESSAGES)]
        said = cell.text("stderr")
        assert "may have missed up to" in said, said
        print(f"{MANY_MESSAGES} displays with a stuck subscriber: {took:.1f} s; {said.strip()}")
    finally:
        stuck.close(linger=0)


def wait_until_ended(pids, within, what):
    deadline = time.monotonic() + within
    while not all(ended(pid) for pid in pids):
        assert time.monotonic() < deadline, f"{what} within {within} s: {pids}"
        time.sleep(0.05)


# A sleep that leaves the engine's process group and session (setsid) and is orphaned (its
# shell exits): a daemon's escape. Prints the sleeper's pid, the engine's and the escapee's.
START_ESCAPEE = (
    'let sleeper = std::process::Command::new("sleep").arg("600").spawn().unwrap();\n'
    'let out = std::process::Command::new("sh").args(["-c", "setsid sleep 601 >/dev/null '
    '2>&1 & echo $!"]).output().unwrap();\n'
    'let escapee: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();\n'
    'println!("{} {} {}", sleeper.id(), std::process::id(), escapee);')


def printed_pids(kc, msg_id, timeout=120, count=2):
    """The `count` numbers the cell of `msg_id` printed (the sleeper's pid, the engine's,
    ...)."""
    deadline = time.monotonic() + timeout
    text = ""
    while len(text.split()) < count:
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            text += msg["content"]["text"]
    return tuple(map(int, text.split()[:count]))


def test_nothing_a_cell_started_outlives_its_engine(attacked):
    """Last in this module: it ends the module's kernel with SIGKILL."""
    kc, km = attacked[0], attacked[4]
    # An interrupt that has to end the engine's process ends what its cells started too.
    # A program that left the engine's session (setsid, orphaned) is ended too.
    msg_id = kc.execute(START_ESCAPEE + "\nloop { std::hint::spin_loop(); }")
    sleeper, engine, escapee = printed_pids(kc, msg_id, count=3)
    # (It is running setsid, or about to: its session changes once setsid has run.)
    deadline = time.monotonic() + 10
    while os.getsid(escapee) == os.getsid(engine):
        assert time.monotonic() < deadline, "it left the engine's session"
        time.sleep(0.02)
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=60)
    assert reply["content"]["status"] == "error", reply["content"]
    wait_until_ended([sleeper, engine, escapee], 10,
                     "the sleeps and the engine ended with the interrupt")

    # A kernel killed outright (SIGKILL: it can clean up nothing) takes them along too.
    msg_id = kc.execute(START_ESCAPEE)
    sleeper, engine, escapee = printed_pids(kc, msg_id, count=3)
    kc.get_shell_msg(timeout=60)
    assert not ended(sleeper) and not ended(escapee)
    os.kill(km.provisioner.pid, signal.SIGKILL)
    wait_until_ended([sleeper, engine, escapee], 10,
                     "the sleeps and the engine ended with the kernel")
