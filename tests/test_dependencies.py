"""Dependencies: tokio, futures and the helpers are there from the first cell (no :dep);
a crate added with :dep is compiled with live progress in the cell, and the footer shows
the time its build took apart from the cell's own compile."""
import re


from conftest import own_kernel, run_cell


def test_a_new_dependency_shows_its_build_progress(kc):
    cell = run_cell(kc, ':dep regex-syntax = "0.8"\nregex_syntax::Parser::new().parse("a+b").is_ok()',
                    timeout=600)
    assert cell.status == "ok", cell.reply["content"]
    assert cell.value() == "true"
    progress = [m for _, m in cell.outputs
                if m["msg_type"] in ("display_data", "update_display_data")
                and m["content"]["metadata"].get("tandem", {}).get("role") == "progress"
                and "dependenc" in m["content"]["data"]["text/plain"]]
    assert progress, "no progress was shown while the dependency compiled"
    assert progress[0]["msg_type"] == "display_data"
    ids = {m["content"]["transient"]["display_id"] for m in progress}
    assert len(ids) == 1, "every report updates the same display"
    texts = [m["content"]["data"]["text/plain"] for m in progress]
    print("\n".join(texts))
    assert any(re.search(r"building dependencies: \d+ of \d+ crates", t) for t in texts)
    assert re.match(r"⚙ built 1 of 1 dependency crates in [\d.]+ s", texts[-1])
    (footer,) = cell.footers()
    assert "dependencies" in footer["content"]["data"]["text/plain"]
    seconds = cell.reply["metadata"]["tandem"]["dependencies_seconds"]
    print(f"regex-syntax built in {seconds:.1f} s")
    assert seconds > 0.5


def test_cells_without_new_dependencies_show_no_progress(kc):
    cell = run_cell(kc, 'tokio::time::sleep(std::time::Duration::from_millis(300)).await;')
    assert cell.status == "ok", cell.reply["content"]
    assert not [m for _, m in cell.outputs if m["msg_type"] == "update_display_data"]
    assert cell.reply["metadata"]["tandem"]["dependencies_seconds"] == 0
    assert "dependencies" not in cell.footers()[0]["content"]["data"]["text/plain"]


def test_the_first_cell_shows_the_engine_starting_then_only_its_own_output():
    with own_kernel() as (_, kc):
        cell = run_cell(kc, 'println!("first");')
    assert cell.status == "ok", cell.reply["content"]
    kinds = [m["msg_type"] for _, m in cell.outputs]
    progress = [m["content"]["data"]["text/plain"] for _, m in cell.outputs
                if m["msg_type"] in ("display_data", "update_display_data")
                and m["content"]["metadata"].get("tandem", {}).get("role") == "progress"]
    assert progress and all("starting the Rust engine" in text for text in progress)
    cleared = kinds.index("clear_output")
    assert cell.outputs[cleared][1]["content"]["wait"] is True
    assert kinds.index("stream") > cleared, "the cell's output comes after the progress goes"
    assert cell.text() == "first\n"


def test_a_dep_line_for_a_preloaded_crate_is_skipped_with_a_note(kc):
    # What evcxr tutorials tell you to type: in tandem it would replace the preloaded tokio.
    cell = run_cell(kc, (
        ':dep tokio = { version = "1", features = ["full"] }\n'
        "tokio::time::sleep(std::time::Duration::from_millis(100)).await;\n"
        "5"
    ))
    assert cell.status == "ok", cell.reply["content"]
    assert cell.value() == "5"
    assert "`tokio` is already linked in every session" in cell.text()
    after = run_cell(kc, 'gather(vec![async_task("still here", 0.1)]).await.len()')
    assert after.status == "ok" and after.value() == "1"
