//! An error with every cause, as one line (`a: b: c`), for logs and the
//! errors users read: reqwest's and hyper's outer errors alone ("error
//! sending request") say nothing of why.

/// `e` and each of its sources, joined with `: `.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
