//! Rich output from a cell: Markdown or HTML shown by the notebook (a table of measured
//! figures, say). Each call shows one output where it was printed; terminals (`tandem
//! run`) print the Markdown or HTML source. A [`Handle`] shows one output and then
//! changes it in place: a table that fills in as tasks finish. [`input`] asks for a line.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Shows `markdown` rendered (a table, a list) under the cell.
///
/// ```
/// tandem_helpers::display::markdown("| a | b |\n|---|---|\n| 1 | 2 |");
/// ```
pub fn markdown(markdown: &str) {
    mime_block("text/markdown", markdown);
}

/// Shows `html` rendered under the cell.
pub fn html(html: &str) {
    mime_block("text/html", html);
}

/// Prints `content` as evcxr's rich-output block of type `mime` (what `markdown` and
/// `html` do): the notebook shows it rendered, as soon as it is printed.
pub fn mime_block(mime: &str, content: &str) {
    println!("EVCXR_BEGIN_CONTENT {mime}\n{content}\nEVCXR_END_CONTENT");
}

/// One output that can be changed after it is shown: its first `markdown`, `html` or
/// `text` shows it, and each later one replaces what it shows, in place.
///
/// ```
/// let progress = tandem_helpers::display::Handle::new();
/// progress.markdown("**0** of 3 tasks done");
/// progress.markdown("**3** of 3 tasks done");
/// ```
///
/// Outside tandem each call prints a new output instead.
pub struct Handle {
    id: String,
    shown: AtomicBool,
}

impl Handle {
    pub fn new() -> Handle {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let number = NEXT.fetch_add(1, Ordering::Relaxed);
        Handle {
            id: format!(
                "tandem-{}-{}-{number}",
                std::process::id(),
                crate::kernel_link::monotonic_ns()
            ),
            shown: AtomicBool::new(false),
        }
    }

    /// Shows `text` rendered as Markdown.
    pub fn markdown(&self, text: &str) {
        self.show("text/markdown", text, markdown);
    }

    /// Shows `text` rendered as HTML.
    pub fn html(&self, text: &str) {
        self.show("text/html", text, html);
    }

    /// Shows plain `text`.
    pub fn text(&self, text: &str) {
        self.show("text/plain", text, |text| println!("{text}"));
    }

    /// Empties the output, in place (a later call shows something there again).
    pub fn clear(&self) {
        if self.shown.load(Ordering::SeqCst) {
            self.show("text/plain", "", |_| {});
        }
    }

    fn show(&self, mime: &str, content: &str, elsewhere: fn(&str)) {
        let update = self.shown.swap(true, Ordering::SeqCst);
        if !crate::kernel_link::show_in_place(&self.id, update, mime, content) {
            elsewhere(content);
        }
    }
}

impl Default for Handle {
    fn default() -> Self {
        Handle::new()
    }
}

/// Asks the notebook for a line of text, showing `prompt`, and returns it (without the
/// line's end). In a terminal it asks there.
///
/// ```no_run
/// let name = tandem_helpers::display::input("Your name? ");
/// println!("hello {name}");
/// ```
pub fn input(prompt: &str) -> String {
    use std::io::Write;
    if crate::kernel_link::in_tandem() {
        // evcxr's request for input, a line: the kernel sends the notebook an input_request.
        println!("EVCXR_INPUT_REQUEST:{}", prompt.replace(['\r', '\n'], " "));
    } else {
        print!("{prompt}");
        let _ = std::io::stdout().flush();
    }
    let mut line = String::new();
    // Nothing to read (stdin closed) is an empty answer, as a notebook without stdin gives.
    let _ = std::io::stdin().read_line(&mut line);
    line.trim_end_matches(['\r', '\n']).to_owned()
}
