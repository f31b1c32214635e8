"""Event-loop figures, measured through a real kernel (jupyter_client): what recording the
runtime costs (10,000 spawned and awaited trivial tasks, `:timeline on` against `:timeline
off` in the same session and build, runs alternating; and the same code on a plain tokio
runtime in a program of its own), the events per second the recorder sustains, and the
delay from a poll to its appearance in the live picture. Prints a table; asserts nothing
but that the cells worked.

Run: .venv/bin/python tests/bench/event_loop.py [--runs N]
(after tests/run or `cargo run --release -- lab` has created .venv and the kernelspec)."""
import argparse
import os
import pathlib
import statistics
import subprocess
import time

import jupyter_client

ROOT = pathlib.Path(__file__).resolve().parents[2]

TEN_THOUSAND_TASKS = """\
let started = std::time::Instant::now();
let handles: Vec<_> = (0..10_000u64).map(|i| tokio::spawn(async move { i })).collect();
let mut sum = 0;
for handle in handles { sum += handle.await.unwrap(); }
assert_eq!(sum, 10_000 * 9_999 / 2);
println!("{}", started.elapsed().as_secs_f64());
"""

# One task that gives its thread back 100,000 times: 200,000 poll events, the most a cell keeps.
MANY_POLLS = """\
let started = std::time::Instant::now();
tokio::spawn(async { for _ in 0..99_990 { tokio::task::yield_now().await; } }).await.unwrap();
println!("{}", started.elapsed().as_secs_f64());
"""

# A task spawned 1 s into the cell, while the cell goes on for another second.
LATE_TASK = """\
println!("started");
tokio::time::sleep(std::time::Duration::from_secs(1)).await;
tokio::spawn(async {}).await.unwrap();
tokio::time::sleep(std::time::Duration::from_secs(1)).await;
"""


def run(kc, code, on_message=None):
    """Runs a cell; returns its stdout and the event-loop pictures' metadata as they came."""
    msg_id = kc.execute(code)
    out, pictures = [], []
    while True:
        msg = kc.get_iopub_msg(timeout=300)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if on_message:
            on_message(msg, time.monotonic())
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream" and content["name"] == "stdout":
            out.append(content["text"])
        if kind in ("display_data", "update_display_data"):
            figures = content["metadata"].get("tandem", {})
            if figures.get("role") == "event-loop":
                pictures.append(figures)
        if kind == "status" and content["execution_state"] == "idle":
            break
    reply = kc.get_shell_msg(timeout=300)
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(out), pictures


def seconds_printed(kc, code):
    out, _ = run(kc, code)
    return float(out.split()[-1])


def plain_tokio(runs):
    """The same 10,000 tasks on tokio alone, compiled in release mode."""
    built = subprocess.run(["cargo", "build", "--release", "-q", "-p", "tandem-helpers",
                            "--example", "plain_tokio_tasks"], cwd=ROOT)
    if built.returncode != 0:
        return None
    ran = subprocess.run([str(ROOT / "target/release/examples/plain_tokio_tasks"), str(runs)],
                         capture_output=True, text=True, check=True)
    return [float(line) for line in ran.stdout.split()]


def live_delays(kc, samples):
    """From the late task's first poll to the first live picture that shows it, in s."""
    delays = []
    for _ in range(samples):
        arrivals = {}

        def watch(msg, at):
            content = msg["content"]
            if msg["msg_type"] == "stream" and "started" in content.get("text", ""):
                arrivals.setdefault("started", at)
            figures = content.get("metadata", {}).get("tandem", {})
            if figures.get("role") == "event-loop" and not figures.get("final"):
                late = [task for task in figures["tasks"] if task["id"] != 0]
                if late and "picture" not in arrivals:
                    arrivals["picture"] = at
                    arrivals["first_poll"] = late[0]["first_poll"]
        run(kc, LATE_TASK, watch)
        if "picture" in arrivals:
            delays.append(arrivals["picture"] - arrivals["started"] - arrivals["first_poll"])
    return delays


def figures(values, unit=" s"):
    return (f"{statistics.median(values):.4f}{unit} (min {min(values):.4f}, "
            f"max {max(values):.4f}, n={len(values)})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    # No standby engine compiling beside the measured one.
    env = dict(os.environ, TANDEM_STANDBY="off")
    km, kc = jupyter_client.manager.start_new_kernel(kernel_name="tandem", env=env)
    try:
        run(kc, "1")  # the engine is up
        seconds_printed(kc, TEN_THOUSAND_TASKS)  # compiled and warm
        on, off = [], []
        for _ in range(args.runs):
            run(kc, ":timeline off")
            off.append(seconds_printed(kc, TEN_THOUSAND_TASKS))
            run(kc, ":timeline on")
            on.append(seconds_printed(kc, TEN_THOUSAND_TASKS))
        _, pictures = run(kc, MANY_POLLS)
        polls = sum(task["polls"] for task in pictures[-1]["tasks"])
        events = 2 * polls
        dropped = pictures[-1]["dropped_events"]
        recorded = [seconds_printed(kc, MANY_POLLS) for _ in range(args.runs)]
        run(kc, ":timeline off")
        unrecorded = [seconds_printed(kc, MANY_POLLS) for _ in range(args.runs)]
        run(kc, ":timeline on")
        delays = live_delays(kc, max(3, args.runs // 2))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    plain = plain_tokio(args.runs)

    overhead = statistics.median(on) / statistics.median(off) - 1
    paired = statistics.median(a / b for a, b in zip(on, off)) - 1
    per_event = (statistics.median(recorded) - statistics.median(unrecorded)) / events
    print("| figure | value |")
    print("|---|---|")
    print(f"| 10,000 tasks, :timeline on | {figures(on)} |")
    print(f"| 10,000 tasks, :timeline off | {figures(off)} |")
    print(f"| recording overhead (medians) | {overhead * 100:+.1f} % |")
    print(f"| recording overhead (median of on/off pairs) | {paired * 100:+.1f} % |")
    if plain:
        print(f"| 10,000 tasks, plain tokio program (release) | {figures(plain)} |")
    print(f"| yield_now ×99,990: events kept / dropped | {events} / {dropped} |")
    print(f"| … with recording | {figures(recorded)} |")
    print(f"| … without | {figures(unrecorded)} |")
    print(f"| events per second recorded (in that cell) | "
          f"{events / statistics.median(recorded):,.0f} |")
    print(f"| cost per event (medians) | {per_event * 1e9:.0f} ns |")
    if delays:
        print(f"| poll → live picture | {figures(delays)} |")


if __name__ == "__main__":
    main()
