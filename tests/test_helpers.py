"""The helper crate (kernel/helpers), preloaded in every session: blocking tasks take the
sum of their waits, gathered async tasks the longest one, lines arrive live, and a timeline
value renders as SVG whose bars match the recorded spans. No :dep line anywhere."""
import re

import jupyter_client
import pytest
from conftest import run_cell


@pytest.fixture(scope="module")
def kc():
    km, kc = jupyter_client.manager.start_new_kernel(kernel_name="tandem")
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# Two named blocking tasks, 1.0 s and 0.5 s, timed together.
BLOCKING_PAIR = (
    "clock::restart();\n"
    'let (_, took) = timed(|| { blocking_task("A", 1.0); blocking_task("B", 0.5); });\n'
    "took.as_secs_f64()"
)


def seconds(cell):
    return float(cell.value())


def test_blocking_tasks_take_the_sum_and_print_live(kc):
    cell = run_cell(kc, BLOCKING_PAIR)
    assert cell.status == "ok", cell.reply["content"]
    total = seconds(cell)
    print(f"blocking pair 1.0 s + 0.5 s: {total:.3f} s")
    assert 1.5 <= total < 1.5 * 1.2
    lines = [(t, m["content"]["text"]) for t, m in cell.outputs if m["msg_type"] == "stream"]
    arrived = {}
    for t, text in lines:
        for line in text.splitlines():
            arrived[re.sub(r"^\[\s*[\d.]+s\] ", "", line)] = t
    assert list(arrived) == ["A started", "A completed", "B started", "B completed"]
    assert arrived["A completed"] - arrived["A started"] > 0.8, "lines arrive as printed"


def test_gathered_async_tasks_take_the_longest(kc):
    sync = seconds(run_cell(kc, BLOCKING_PAIR))
    cell = run_cell(kc, (
        "clock::restart();\n"
        "let (reports, took) = timed(|| run_on_one_thread(gather(vec![\n"
        '    async_task("A", 1.0),\n'
        '    async_task("B", 0.5),\n'
        "])));\n"
        'println!("{reports:?}");\n'
        "took.as_secs_f64()"
    ))
    assert cell.status == "ok", cell.reply["content"]
    total = seconds(cell)
    print(f"gathered pair: {total:.3f} s, blocking pair: {sync:.3f} s")
    assert 1.0 <= total < 1.0 * 1.2
    assert total < 0.7 * sync
    assert '["A waited 1.00 s", "B waited 0.50 s"]' in cell.text()


def test_timeline_value_is_svg_matching_the_spans(kc):
    cell = run_cell(kc, (
        "clock::restart();\n"
        'run_on_one_thread(gather(vec![async_task("slow", 0.6), async_task("fast", 0.3)]));\n'
        "timeline()"
    ))
    assert cell.status == "ok", cell.reply["content"]
    (result,) = cell.of_type("execute_result")
    data = result["content"]["data"]
    assert not cell.displays(), "a value with two mime types stays one value"
    svg = data["image/svg+xml"]
    bars = re.findall(r'data-kind="(\w+)" data-start="([\d.]+)" data-end="([\d.]+)"', svg)
    assert len(bars) == 2
    by_length = sorted(bars, key=lambda b: float(b[2]) - float(b[1]))
    for (kind, start, end), wait in zip(by_length, (0.3, 0.6)):
        assert kind == "async"
        assert float(start) < 0.05
        assert abs(float(end) - float(start) - wait) < 0.05
    assert "total 0.6" in data["text/plain"] and "sum of tasks 0.9" in data["text/plain"]


def test_tokio_and_top_level_await_work_without_setup(kc):
    # The classic example, as a book writes it, with no :dep line.
    cell = run_cell(kc, (
        "async fn say(word: &str, ms: u64) -> String {\n"
        "    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;\n"
        "    word.to_uppercase()\n"
        "}\n"
        "let started = std::time::Instant::now();\n"
        'let (a, b) = tokio::join!(say("hello", 600), say("world", 300));\n'
        'println!("{a} {b}");\n'
        "started.elapsed().as_secs_f64()"
    ))
    assert cell.status == "ok", cell.reply["content"]
    assert "HELLO WORLD" in cell.text()
    took = seconds(cell)
    print(f"tokio::join! of 0.6 s and 0.3 s: {took:.3f} s")
    assert 0.6 <= took < 0.6 * 1.3


def test_one_runtime_serves_every_cell(kc):
    # tokio is linked once for the whole session: a task spawned in one cell finishes in
    # the next, and the variables holding it survive.
    spawned = run_cell(kc, (
        "let handle = tokio::spawn(async {\n"
        "    tokio::time::sleep(std::time::Duration::from_millis(200)).await;\n"
        "    futures::future::ready(21).await * 2\n"
        "});"
    ))
    assert spawned.status == "ok", spawned.reply["content"]
    joined = run_cell(kc, "handle.await.unwrap()")
    assert joined.status == "ok", joined.reply["content"]
    assert joined.value() == "42"
