//! Message files read and measured without holding large ones in memory: a file above
//! [`SPOOL_THRESHOLD`] is handed on as an open file (or, when it has bare LF line ends, as
//! a spool of its CRLF form), and sizes are counted in chunks.

use std::io::Read;
use std::path::Path;

use crate::imap::spool::{Spool, SpoolWriter, SPOOL_CHUNK, SPOOL_THRESHOLD};
use crate::store::{BodyData, BodyRef};

/// Counts the CRLF length of a byte stream fed in pieces (each bare LF counts two).
#[derive(Debug, Default)]
pub struct CrlfCount {
    prev: u8,
    /// Bytes seen.
    pub raw: u64,
    /// Bytes with every bare LF counted as CRLF.
    pub crlf: u64,
}

impl CrlfCount {
    /// Counts the next piece.
    pub fn feed(&mut self, data: &[u8]) {
        let mut bare = 0u64;
        let mut prev = self.prev;
        for &b in data {
            if b == b'\n' && prev != b'\r' {
                bare += 1;
            }
            prev = b;
        }
        if let Some(&last) = data.last() {
            self.prev = last;
        }
        self.raw += data.len() as u64;
        self.crlf += data.len() as u64 + bare;
    }
}

/// The length of a body with every bare LF counted as CRLF.
pub fn crlf_len(body: BodyRef<'_>) -> std::io::Result<u64> {
    let mut c = CrlfCount::default();
    body.for_each_chunk(|d| {
        c.feed(d);
        Ok(())
    })?;
    Ok(c.crlf)
}

/// Reads a message file with CRLF line ends: a small one into memory, a large one as a
/// handle on the file itself (or on a CRLF copy in a spool file when it has bare LFs).
pub fn read_body(path: &Path) -> std::io::Result<BodyData> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len <= SPOOL_THRESHOLD as u64 {
        let mut data = Vec::with_capacity(len as usize);
        file.read_to_end(&mut data)?;
        return Ok(BodyData::Memory(super::scan::to_crlf(data)));
    }
    let spool = Spool::from_file(file, len);
    if crlf_len(BodyRef::Spool(&spool))? == len {
        return Ok(BodyData::Spool(spool));
    }
    let mut w = SpoolWriter::new()?;
    let mut prev = 0u8;
    let mut out = Vec::with_capacity(2 * SPOOL_CHUNK);
    spool.for_each_chunk(|c| {
        out.clear();
        for &b in c {
            if b == b'\n' && prev != b'\r' {
                out.push(b'\r');
            }
            out.push(b);
            prev = b;
        }
        w.write(&out)
    })?;
    Ok(BodyData::Spool(w.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bare_lfs_across_pieces() {
        let mut c = CrlfCount::default();
        c.feed(b"a\r");
        c.feed(b"\nb\n");
        c.feed(b"\n");
        assert_eq!((c.raw, c.crlf), (6, 8));
        assert_eq!(
            crlf_len(BodyRef::Bytes(b"\na\r\n")).expect("count"),
            super::super::scan::crlf_len(b"\na\r\n") as u64
        );
    }

    #[test]
    fn large_files_are_not_read_into_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let line = b"0123456789 abcdefghij 0123456789 abcdefghij 0123456789 abcdefghij 01234\n";
        let mut lf = b"Message-ID: <big@x>\n\n".to_vec();
        while lf.len() <= SPOOL_THRESHOLD + 3 {
            lf.extend_from_slice(line);
        }
        let crlf = super::super::scan::to_crlf(lf.clone());
        let p = dir.path().join("lf");
        std::fs::write(&p, &lf).expect("write");
        let b = read_body(&p).expect("read");
        assert!(matches!(b, BodyData::Spool(_)));
        assert_eq!(b.to_vec().expect("bytes"), crlf);
        let p = dir.path().join("crlf");
        std::fs::write(&p, &crlf).expect("write");
        let b = read_body(&p).expect("read");
        assert!(matches!(b, BodyData::Spool(_)));
        assert_eq!(b.to_vec().expect("bytes"), crlf);
        let p = dir.path().join("small");
        std::fs::write(&p, b"a\nb\n").expect("write");
        assert_eq!(
            read_body(&p).expect("read"),
            BodyData::Memory(b"a\r\nb\r\n".to_vec())
        );
    }
}
