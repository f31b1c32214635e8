//! Code run once in every new session, before the first cell.
//!
//! evcxr shows a cell's value by first compiling `(value).evcxr_display()` and, when that
//! fails to compile (most types have no such method), compiling again with `{:?}`. The
//! blanket trait below gives every `Debug` type that method, so the first compile works and
//! a cell with a value is compiled once instead of twice. Types with their own inherent
//! `evcxr_display` still win: inherent methods come before trait methods.

pub const PRELUDE: &str = r#"
#[doc(hidden)]
pub trait TandemShowDebug {
    fn evcxr_display(&self);
}
impl<T: std::fmt::Debug + ?Sized> TandemShowDebug for T {
    fn evcxr_display(&self) {
        println!("EVCXR_BEGIN_CONTENT text/plain\n{:?}\nEVCXR_END_CONTENT", self);
    }
}
"#;
