//! A shell command whose stdin/stdout speak IMAP (`preauthtunnel`, `transporttunnel`).
