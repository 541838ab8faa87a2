//! COMPRESS=DEFLATE (RFC 4978): raw deflate in both directions over any stream.

/// A stream compressed with raw deflate (placeholder until implemented).
pub struct DeflateStream;
