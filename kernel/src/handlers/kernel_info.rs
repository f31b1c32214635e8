//! `kernel_info_reply`: who we are, the language, and where to find help.

use super::{Handled, Reply};
use crate::wire::content::{HelpLink, KernelInfoReply, LanguageInfo, ReplyStatus};
use crate::wire::PROTOCOL_VERSION;

pub fn reply() -> Handled {
    Ok(Some(Reply::new(&info())))
}

pub fn info() -> KernelInfoReply {
    let rustc = env!("TANDEM_RUSTC_VERSION");
    KernelInfoReply {
        status: ReplyStatus::Ok,
        protocol_version: PROTOCOL_VERSION,
        implementation: "tandem",
        implementation_version: env!("CARGO_PKG_VERSION"),
        language_info: LanguageInfo {
            name: "rust",
            version: rustc.split_whitespace().nth(1).unwrap_or(rustc).to_owned(),
            mimetype: "text/rust",
            file_extension: ".rs",
            pygments_lexer: "rust",
            codemirror_mode: "rust",
            nbconvert_exporter: "script",
        },
        banner: format!(
            "tandem {} — Rust in Jupyter, for learning sync versus async ({rustc}, evcxr engine).\n\
             Type :help for the kernel's commands.",
            env!("CARGO_PKG_VERSION")
        ),
        help_links: vec![
            HelpLink {
                text: "Rust standard library",
                url: "https://doc.rust-lang.org/std/",
            },
            HelpLink {
                text: "tokio documentation",
                url: "https://docs.rs/tokio/latest/tokio/",
            },
            HelpLink {
                text: "The Rust async book",
                url: "https://rust-lang.github.io/async-book/",
            },
            // The shipped lessons' first page, as `tandem lab` serves it.
            HelpLink {
                text: "tandem lessons: start here",
                url: "/lab/tree/01-start-here.ipynb",
            },
        ],
        debugger: false,
    }
}
