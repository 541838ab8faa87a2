//! Message bodies too large to hold in memory: anonymous spool files (unlinked, 0600) that
//! the framing layer fills as a large literal arrives, and that the APPEND writer and the
//! Maildir writer read back in chunks. Small bodies stay in memory ([`BodyData::Memory`]).

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// Literals (and Maildir files) larger than this go to a spool file, smaller ones stay in
/// memory.
pub const SPOOL_THRESHOLD: usize = 1024 * 1024;

/// The size of the pieces a spool is written and read in.
pub const SPOOL_CHUNK: usize = 64 * 1024;

static SPOOL_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Sets where spool files are created (the metadata directory: on disk, where `/tmp` may
/// be memory). Only the first call counts; without one, the system's temporary directory.
pub fn set_spool_dir(dir: PathBuf) {
    let _ = SPOOL_DIR.set(dir);
}

/// A message body in an anonymous file: gone from the file system from the start, deleted
/// by the kernel when the last handle closes. Cheap to clone (the handle is shared).
#[derive(Debug, Clone)]
pub struct Spool {
    file: Arc<File>,
    len: u64,
}

impl PartialEq for Spool {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.file, &other.file) && self.len == other.len
    }
}

impl Eq for Spool {}

impl Spool {
    /// Wraps a file of which the first `len` bytes are the body (an open Maildir file).
    pub fn from_file(file: File, len: u64) -> Spool {
        Spool {
            file: Arc::new(file),
            len,
        }
    }

    /// The body's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads up to `buf.len()` bytes at `offset`; returns how many (0 at the end).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let want = buf
            .len()
            .min((self.len - offset).min(usize::MAX as u64) as usize);
        loop {
            match self.file.read_at(&mut buf[..want], offset) {
                Ok(0) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "spool file shorter than recorded",
                    ))
                }
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Calls `f` with each piece of the body, in order.
    pub fn for_each_chunk(
        &self,
        mut f: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let mut buf = vec![0u8; SPOOL_CHUNK];
        let mut at = 0u64;
        while at < self.len {
            let n = self.read_at(at, &mut buf)?;
            f(&buf[..n])?;
            at += n as u64;
        }
        Ok(())
    }

    /// The beginning of the body: up to the end of its header (the first empty line), at
    /// most `max` bytes.
    pub fn head(&self, max: usize) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; SPOOL_CHUNK];
        while (out.len() as u64) < self.len && out.len() < max {
            let n = self.read_at(out.len() as u64, &mut buf)?;
            let scan_from = out.len().saturating_sub(3);
            out.extend_from_slice(&buf[..n]);
            let tail = &out[scan_from..];
            if tail.windows(2).any(|w| w == b"\n\n") || tail.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        out.truncate(max);
        Ok(out)
    }
}

/// Creates an anonymous spool file (unlinked, mode 0600) in the spool directory.
pub fn anonymous_file() -> std::io::Result<File> {
    match SPOOL_DIR.get() {
        Some(dir) => tempfile::tempfile_in(dir),
        None => tempfile::tempfile(),
    }
}

/// Writes a body into a new spool file piece by piece.
#[derive(Debug)]
pub struct SpoolWriter {
    file: File,
    written: u64,
}

impl SpoolWriter {
    /// Starts a new spool.
    pub fn new() -> std::io::Result<SpoolWriter> {
        Ok(SpoolWriter {
            file: anonymous_file()?,
            written: 0,
        })
    }

    /// Appends bytes.
    pub fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.file.write_all(data)?;
        self.written += data.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Finishes the spool.
    pub fn finish(self) -> Spool {
        Spool::from_file(self.file, self.written)
    }
}

/// A whole message body: in memory, or spooled to disk when large.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyData {
    /// Held in memory.
    Memory(Vec<u8>),
    /// In a spool file.
    Spool(Spool),
}

impl BodyData {
    /// A borrowed view.
    pub fn as_ref(&self) -> BodyRef<'_> {
        match self {
            BodyData::Memory(v) => BodyRef::Bytes(v),
            BodyData::Spool(s) => BodyRef::Spool(s),
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.as_ref().len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole body in memory (reads a spool whole: for tests and small bodies).
    pub fn to_vec(&self) -> std::io::Result<Vec<u8>> {
        self.as_ref().to_vec()
    }
}

/// A borrowed message body: bytes in memory or a spool file.
#[derive(Debug, Clone, Copy)]
pub enum BodyRef<'a> {
    /// Bytes in memory.
    Bytes(&'a [u8]),
    /// A spool file.
    Spool(&'a Spool),
}

impl<'a> From<&'a [u8]> for BodyRef<'a> {
    fn from(b: &'a [u8]) -> Self {
        BodyRef::Bytes(b)
    }
}

impl<'a> From<&'a Vec<u8>> for BodyRef<'a> {
    fn from(b: &'a Vec<u8>) -> Self {
        BodyRef::Bytes(b)
    }
}

impl<'a> From<&'a BodyData> for BodyRef<'a> {
    fn from(b: &'a BodyData) -> Self {
        b.as_ref()
    }
}

impl BodyRef<'_> {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            BodyRef::Bytes(b) => b.len() as u64,
            BodyRef::Spool(s) => s.len(),
        }
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` with each piece of the body, in order (one piece for bytes in memory).
    pub fn for_each_chunk(
        &self,
        mut f: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        match self {
            BodyRef::Bytes(b) => f(b),
            BodyRef::Spool(s) => s.for_each_chunk(f),
        }
    }

    /// The header (up to the first empty line, at most `max` bytes); the whole of a body
    /// in memory.
    pub fn head(&self, max: usize) -> std::io::Result<std::borrow::Cow<'_, [u8]>> {
        match self {
            BodyRef::Bytes(b) => Ok(std::borrow::Cow::Borrowed(b)),
            BodyRef::Spool(s) => Ok(std::borrow::Cow::Owned(s.head(max)?)),
        }
    }

    /// The whole body in memory.
    pub fn to_vec(&self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.len().min(SPOOL_THRESHOLD as u64) as usize);
        self.for_each_chunk(|c| {
            out.extend_from_slice(c);
            Ok(())
        })?;
        Ok(out)
    }
}

/// The spooled literals of one response, by the placeholder that stands in for each in
/// the bytes handed to imap-codec.
#[derive(Debug, Default, Clone)]
pub struct Spools {
    by_marker: HashMap<Vec<u8>, Spool>,
}

impl Spools {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_marker.is_empty()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.by_marker.len()
    }

    pub(crate) fn insert(&mut self, marker: Vec<u8>, spool: Spool) {
        self.by_marker.insert(marker, spool);
    }

    /// Takes the spool that the literal `data` stands for, if it is a placeholder.
    pub fn take(&mut self, data: &[u8]) -> Option<Spool> {
        if self.by_marker.is_empty() {
            return None;
        }
        self.by_marker.remove(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_roundtrip_and_head() {
        let mut w = SpoolWriter::new().expect("spool");
        let mut want = b"Message-ID: <x@y>\r\nSubject: s\r\n\r\n".to_vec();
        want.extend(std::iter::repeat_n(b'z', 3 * SPOOL_CHUNK + 17));
        for c in want.chunks(1000) {
            w.write(c).expect("write");
        }
        let s = w.finish();
        assert_eq!(s.len(), want.len() as u64);
        let d = BodyData::Spool(s.clone());
        assert_eq!(d.to_vec().expect("read"), want);
        assert_eq!(s.head(1 << 20).expect("head"), want[..SPOOL_CHUNK]);
        assert_eq!(s.head(5).expect("head"), b"Messa");
    }
}
