//! Rendering errors: an error with its chain of causes on one line, each cause once. A leaf: it
//! knows no phase.

/// An error with its causes, each once: `cannot open x: No such file or directory`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open `x`")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open `x`: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn each_cause_once() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        assert_eq!(error_chain(&Outer(io())), "cannot open `x`: No such file or directory");
        assert_eq!(error_chain(&Repeats(io())), "cannot open `x`: No such file or directory");
    }
}
