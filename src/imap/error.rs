//! Errors of the IMAP layer.

use thiserror::Error;

/// What can go wrong talking IMAP.
#[derive(Debug, Error)]
pub enum ImapError {
    /// The connection was closed by the server or the transport.
    #[error("connection closed by the server")]
    Closed,
    /// The connection was closed in the middle of a response (a partial line, or a literal
    /// cut short); the text says where.
    #[error("connection closed by the server in the middle of a response: {0}")]
    Truncated(String),
    /// A read or write did not progress within the timeout.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// An I/O error on the transport.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The server sent something we cannot parse.
    #[error("malformed response from the server: {0}")]
    Malformed(String),
    /// The server announced a message larger than allowed.
    #[error("the server sent a {size}-byte message, larger than the {limit}-byte limit (maxmessagesize)")]
    TooLarge {
        /// Announced size.
        size: u32,
        /// Configured limit.
        limit: u32,
    },
    /// The server said BYE.
    #[error("the server closed the session: {0}")]
    Bye(String),
    /// A command was answered NO or BAD.
    #[error("{command} failed: {status} {text}")]
    Command {
        /// The command name.
        command: String,
        /// NO or BAD.
        status: String,
        /// The server's text.
        text: String,
    },
    /// The server does not support what we need, or breaks the protocol.
    #[error("{0}")]
    Protocol(String),
    /// A security requirement is not met (TLS, plaintext login...).
    #[error("{0}")]
    Security(String),
}
