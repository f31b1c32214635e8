//! Rich output from a cell: Markdown or HTML shown by the notebook (a table of measured
//! figures, say). Each call shows one output where it was printed; terminals (`tandem
//! run`) print the Markdown or HTML source.

/// Shows `markdown` rendered (a table, a list) under the cell.
///
/// ```
/// tandem_helpers::display::markdown("| a | b |\n|---|---|\n| 1 | 2 |");
/// ```
pub fn markdown(markdown: &str) {
    println!("EVCXR_BEGIN_CONTENT text/markdown\n{markdown}\nEVCXR_END_CONTENT");
}

/// Shows `html` rendered under the cell.
pub fn html(html: &str) {
    println!("EVCXR_BEGIN_CONTENT text/html\n{html}\nEVCXR_END_CONTENT");
}
