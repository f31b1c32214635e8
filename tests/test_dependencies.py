"""Dependencies: tokio, futures and the helpers are there from the first cell (no :dep);
a crate added with :dep is compiled with live progress in the cell, and the footer shows
the time its build took apart from the cell's own compile."""
import pathlib
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


def cargo_stamps(crate_dir):
    """When cargo last built each unit of the cells' crate: the modification times of its
    fingerprint folder's files (cargo rewrites them on every build of the cell crate)."""
    return {path: path.stat().st_mtime_ns
            for path in pathlib.Path(crate_dir).glob("target/**/.fingerprint/ctx-*/*")}


def test_warm_cells_skip_cargo_until_what_cargo_reads_changes(kc, tmp_path):
    # The cells' crate folder, as the compiler saw it.
    cell = run_cell(kc, 'env!("CARGO_MANIFEST_DIR")')
    assert cell.status == "ok", cell.reply["content"]
    crate_dir = cell.value().strip('"')
    assert cargo_stamps(crate_dir), "cargo has built the cell crate"

    before = cargo_stamps(crate_dir)
    for n in (2, 3, 4):
        cell = run_cell(kc, f"{n} + 1")
        assert cell.value() == str(n + 1)
    assert cargo_stamps(crate_dir) == before, "a warm cell ran cargo (patches/README.md 2.)"

    # A local crate as a dependency: cargo builds it, and builds it again once it is edited.
    probe = tmp_path / "probe"
    (probe / "src").mkdir(parents=True)
    (probe / "Cargo.toml").write_text('[package]\nname = "probe"\nversion = "0.1.0"\n'
                                      'edition = "2021"\n')
    (probe / "src" / "lib.rs").write_text("pub fn answer() -> i32 { 1 }\n")
    cell = run_cell(kc, f':dep probe = {{ path = "{probe}" }}\nprobe::answer()')
    assert cell.status == "ok", cell.reply["content"]
    assert cell.value() == "1"
    assert cargo_stamps(crate_dir) != before, "a new dependency goes through cargo"

    (probe / "src" / "lib.rs").write_text("pub fn answer() -> i32 { 2 }\n")
    cell = run_cell(kc, "probe::answer()")
    assert cell.value() == "2", "the edited local crate was rebuilt"

    before = cargo_stamps(crate_dir)
    cell = run_cell(kc, "probe::answer() + 10")
    assert cell.value() == "12"
    assert cargo_stamps(crate_dir) == before, "unchanged again: no cargo"

    # A dependency's library gone from under the recorded command: cargo builds it again.
    removed = list(pathlib.Path(crate_dir).glob("target/**/deps/libprobe-*"))
    assert removed, "the local crate's library is where cargo put it"
    for library in removed:
        library.unlink()
    cell = run_cell(kc, "probe::answer() + 20")
    assert cell.status == "ok", cell.reply["content"]
    assert cell.value() == "22"
    assert cargo_stamps(crate_dir) != before, "cargo rebuilt the missing library"
    before = cargo_stamps(crate_dir)

    # A compile error found without cargo reads as one found with it.
    cell = run_cell(kc, 'let x: i32 = "text";')
    assert cell.status == "error"
    assert cell.reply["content"]["ename"] == "error[E0308]", cell.reply["content"]
    assert "mismatched types" in cell.reply["content"]["evalue"]
    assert cargo_stamps(crate_dir) == before, "the error was found without cargo"


def test_the_code_around_each_cell_comes_compiled_in_the_preloaded_crate(kc):
    # The variable store and the cells' runtime are the preloaded crate's, not pasted into
    # each cell's crate (patches/README.md 3.), and they carry variables as evcxr's own do.
    cell = run_cell(kc, 'let kept = vec![1, 2, 3];\nlet label = String::from("a");')
    assert cell.status == "ok", cell.reply["content"]
    cell = run_cell(kc, 'env!("CARGO_MANIFEST_DIR")')
    source = (pathlib.Path(cell.value().strip('"')) / "src" / "lib.rs").read_text()
    assert "use tokio::__tandem::cell_store as evcxr_internal_runtime;" in source
    assert "mod evcxr_internal_runtime" not in source
    assert "fn create_variable_store" not in source

    cell = run_cell(kc, "tokio::task::yield_now().await;\nkept.len() + label.len()")
    assert cell.value() == "4", "variables and the runtime go from cell to cell"
    cell = run_cell(kc, 'let label = 7;\npanic!("on purpose");')
    assert cell.status == "error"
    cell = run_cell(kc, "kept.iter().sum::<i32>()")
    assert cell.value() == "6", "a panic keeps the variables"
    cell = run_cell(kc, 'let kept = "now a str";\nkept.len()')
    assert cell.value() == "9", "a variable may change type"


def test_only_a_cell_with_a_let_asks_rust_analyzer_for_types(kc):
    # rust-analyzer is asked for the types of the variables a cell defines; a cell without
    # a `let` skips the query (patches/README.md 4.). The reply's metadata shows its time.
    def analysis(code):
        cell = run_cell(kc, code)
        assert cell.status == "ok", cell.reply["content"]
        return cell.reply["metadata"]["tandem"]["analysis_seconds"]

    assert analysis("let analysed = 5 * 5;") > 0
    assert analysis("analysed + 1") == 0
    assert analysis('println!("{}", analysed);') == 0
    assert analysis("let analysed_again = analysed + 1;\nanalysed_again") > 0


def test_a_let_inside_a_closure_or_block_needs_no_type_query(kc):
    # Only top-level `let`s define variables that evcxr keeps.
    cell = run_cell(kc, "let total: i32 = (0..3).map(|x| { let y = x + 1; y }).sum();\ntotal")
    assert cell.value() == "6"
    assert cell.reply["metadata"]["tandem"]["analysis_seconds"] > 0
    cell = run_cell(kc, "(0..2).map(|x| { let y = x * 20; y }).sum::<i32>() + { let two = 2; two }")
    assert cell.value() == "22"
    assert cell.reply["metadata"]["tandem"]["analysis_seconds"] == 0
