//! COMPRESS=DEFLATE (RFC 4978): raw deflate in both directions over any stream.
//!
//! Writes are compressed into a bounded buffer; `flush` ends the batch with a deflate sync
//! flush (so the peer can decompress everything sent so far), writes it out and flushes the
//! inner stream. Reads decompress as data arrives.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{BoxStream, ByteCounters};

/// Size of the compressed-input read buffer.
const READ_CHUNK: usize = 16 * 1024;
/// Compressed output held before writes wait for the inner stream (backpressure).
const MAX_PENDING_OUT: usize = 64 * 1024;
/// Most plaintext taken by one `poll_write`, which bounds what one call can add.
const MAX_WRITE_IN: usize = 64 * 1024;

/// Byte totals of a compressed stream: what crossed the wire and what the IMAP layer saw.
#[derive(Debug, Clone, Default)]
pub struct CompressStats {
    /// Compressed bytes read from and written to the inner stream.
    pub wire: ByteCounters,
    /// Uncompressed bytes returned to the reader and accepted from the writer.
    pub plain: ByteCounters,
}

/// A stream compressed with raw deflate (no zlib header) both ways, per RFC 4978.
pub struct DeflateStream<S> {
    inner: S,
    stats: CompressStats,
    // Write side.
    compress: Compress,
    out: Vec<u8>,
    out_pos: usize,
    /// Plaintext accepted since the last sync flush.
    need_sync: bool,
    // Read side.
    decompress: Decompress,
    input: Vec<u8>,
    in_pos: usize,
    in_end: usize,
    inner_eof: bool,
    stream_end: bool,
}

impl<S> DeflateStream<S> {
    /// Wraps `inner`. `leftover` holds compressed bytes already read from `inner` (after
    /// the tagged OK to COMPRESS) that must be decompressed before anything else.
    pub fn new(inner: S, leftover: Vec<u8>) -> Self {
        let in_end = leftover.len();
        DeflateStream {
            inner,
            stats: CompressStats::default(),
            compress: Compress::new(Compression::default(), false),
            out: Vec::new(),
            out_pos: 0,
            need_sync: false,
            decompress: Decompress::new(false),
            input: leftover,
            in_pos: 0,
            in_end,
            inner_eof: false,
            stream_end: false,
        }
    }

    /// A handle on the byte totals, usable after the stream is boxed or gone.
    pub fn stats(&self) -> CompressStats {
        self.stats.clone()
    }
}

/// Boxes `stream` inside a [`DeflateStream`] (see [`DeflateStream::new`] for `leftover`).
pub fn compress(stream: BoxStream, leftover: Vec<u8>) -> BoxStream {
    Box::new(DeflateStream::new(stream, leftover))
}

fn deflate_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("COMPRESS=DEFLATE: compression failed: {e}"))
}

impl<S: AsyncWrite + Unpin> DeflateStream<S> {
    /// Writes all pending compressed output to the inner stream.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.out.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.out_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
            self.stats.wire.add_written(n as u64);
        }
        self.out.clear();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }

    /// Drops already-written bytes from the front of `out` before appending more.
    fn compact_out(&mut self) {
        if self.out_pos > 0 {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for DeflateStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.out.len() - this.out_pos >= MAX_PENDING_OUT {
            // Try to make room; if the inner stream is busy, wait for it.
            match this.poll_drain(cx) {
                Poll::Ready(r) => r?,
                Poll::Pending if this.out.len() - this.out_pos >= MAX_PENDING_OUT => {
                    return Poll::Pending
                }
                Poll::Pending => {}
            }
        }
        this.compact_out();
        let input = &buf[..buf.len().min(MAX_WRITE_IN)];
        let mut extra = 1024;
        loop {
            this.out.reserve(input.len() / 2 + extra);
            let before = this.compress.total_in();
            this.compress
                .compress_vec(input, &mut this.out, FlushCompress::None)
                .map_err(deflate_error)?;
            let consumed = (this.compress.total_in() - before) as usize;
            if consumed > 0 {
                this.need_sync = true;
                this.stats.plain.add_written(consumed as u64);
                return Poll::Ready(Ok(consumed));
            }
            // No room for the compressor to make progress: give it more.
            extra = extra.saturating_mul(4).min(MAX_WRITE_IN * 2);
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.need_sync {
            this.compact_out();
            loop {
                this.out.reserve(READ_CHUNK);
                this.compress
                    .compress_vec(&[], &mut this.out, FlushCompress::Sync)
                    .map_err(deflate_error)?;
                // Done once the compressor left output space unused.
                if this.out.len() < this.out.capacity() {
                    break;
                }
            }
            this.need_sync = false;
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for DeflateStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.stream_end {
                // The peer finished its deflate stream: nothing more can follow.
                return Poll::Ready(Ok(()));
            }
            // Decompress what we have; with no input this still drains pending output.
            let out = buf.initialize_unfilled();
            let (in_before, out_before) = (this.decompress.total_in(), this.decompress.total_out());
            let status = this
                .decompress
                .decompress(
                    &this.input[this.in_pos..this.in_end],
                    out,
                    FlushDecompress::None,
                )
                .map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("COMPRESS=DEFLATE: corrupt compressed data from the server: {e}"),
                    )
                })?;
            let consumed = (this.decompress.total_in() - in_before) as usize;
            let produced = (this.decompress.total_out() - out_before) as usize;
            this.in_pos += consumed;
            if status == Status::StreamEnd {
                this.stream_end = true;
            }
            if produced > 0 {
                buf.advance(produced);
                this.stats.plain.add_read(produced as u64);
                return Poll::Ready(Ok(()));
            }
            if consumed > 0 {
                continue;
            }
            // No progress: more compressed input is needed.
            if this.inner_eof {
                return Poll::Ready(Ok(()));
            }
            if this.in_pos > 0 {
                this.input.copy_within(this.in_pos..this.in_end, 0);
                this.in_end -= this.in_pos;
                this.in_pos = 0;
            }
            if this.input.len() < this.in_end + READ_CHUNK {
                this.input.resize(this.in_end + READ_CHUNK, 0);
            }
            let mut rb = ReadBuf::new(&mut this.input[this.in_end..]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                this.inner_eof = true;
            }
            this.in_end += n;
            this.stats.wire.add_read(n as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Deterministic data: half text-like (compressible), half pseudo-random.
    fn data(len: usize, seed: u64) -> Vec<u8> {
        let text = b"From: someone@example.org\r\nSubject: hello\r\n";
        let mut x = seed | 1;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if (i / 4096) % 2 == 0 {
                    text[i % text.len()]
                } else {
                    x as u8
                }
            })
            .collect()
    }

    fn inflate_all(raw: &[u8]) -> Vec<u8> {
        let mut d = Decompress::new(false);
        let mut out = Vec::with_capacity(raw.len() * 4 + 1024);
        let mut pos = 0;
        loop {
            out.reserve(64 * 1024);
            let before = d.total_in();
            d.decompress_vec(&raw[pos..], &mut out, FlushDecompress::Sync)
                .unwrap();
            pos += (d.total_in() - before) as usize;
            if pos == raw.len() && out.len() < out.capacity() {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn round_trip_both_ways_large_and_tiny() {
        let (a, b) = tokio::io::duplex(4096);
        let a = DeflateStream::new(a, Vec::new());
        let b = DeflateStream::new(b, Vec::new());
        let (a_stats, b_stats) = (a.stats(), b.stats());
        let (mut ar, mut aw) = tokio::io::split(a);
        let (mut br, mut bw) = tokio::io::split(b);
        let big = data(3 << 20, 7);
        let big2 = big.clone();
        // a → b: a few MB in uneven writes with flushes between; b → a: tiny writes.
        let writer_a = tokio::spawn(async move {
            for chunk in big2.chunks(100_003) {
                aw.write_all(chunk).await.unwrap();
                aw.flush().await.unwrap();
            }
            aw
        });
        let writer_b = tokio::spawn(async move {
            for i in 0..5000u32 {
                bw.write_all(&[(i % 251) as u8]).await.unwrap();
                if i % 97 == 0 {
                    bw.flush().await.unwrap();
                }
            }
            bw.flush().await.unwrap();
            bw
        });
        let mut got = vec![0u8; big.len()];
        br.read_exact(&mut got).await.unwrap();
        assert!(got == big, "a → b data differ");
        let mut tiny = vec![0u8; 5000];
        ar.read_exact(&mut tiny).await.unwrap();
        assert!(tiny.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
        writer_a.await.unwrap();
        writer_b.await.unwrap();

        assert_eq!(a_stats.plain.written(), big.len() as u64);
        assert_eq!(b_stats.plain.read(), big.len() as u64);
        assert_eq!(a_stats.wire.written(), b_stats.wire.read());
        assert_eq!(b_stats.wire.written(), a_stats.wire.read());
        // Half the data is text: it must shrink on the wire.
        assert!(a_stats.wire.written() < big.len() as u64 * 3 / 4);
    }

    #[tokio::test]
    async fn output_is_raw_deflate_with_sync_flush_per_batch() {
        let (a, mut raw_end) = tokio::io::duplex(1 << 20);
        let mut a = DeflateStream::new(a, Vec::new());
        let mut raw = Vec::new();
        let mut sent = Vec::new();
        for batch in [
            &b"a1 NOOP\r\n"[..],
            b"a2 UID FETCH 1:* (FLAGS)\r\n",
            b"a3 LOGOUT\r\n",
        ] {
            a.write_all(batch).await.unwrap();
            a.flush().await.unwrap();
            sent.extend_from_slice(batch);
            let mut chunk = vec![0u8; 4096];
            let n = raw_end.read(&mut chunk).await.unwrap();
            // Each batch ends with the empty stored block of a sync flush.
            assert_eq!(&chunk[n - 4..n], &[0, 0, 0xff, 0xff]);
            raw.extend_from_slice(&chunk[..n]);
            // And everything so far decompresses with plain flate2 (no zlib header).
            assert_eq!(inflate_all(&raw), sent);
        }
        // Flushing with nothing new written sends nothing.
        a.flush().await.unwrap();
        let mut probe = [0u8; 1];
        let nothing = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            raw_end.read(&mut probe),
        )
        .await;
        assert!(nothing.is_err(), "an empty flush wrote bytes");
    }

    #[tokio::test]
    async fn leftover_is_decompressed_first() {
        // The server's compressed bytes, produced independently with flate2.
        let message = data(50_000, 3);
        let mut c = Compress::new(Compression::default(), false);
        let mut wire = Vec::with_capacity(100_000);
        c.compress_vec(&message, &mut wire, FlushCompress::Sync)
            .unwrap();
        assert_eq!(c.total_in() as usize, message.len());
        // Part of it was read before COMPRESS took effect; the rest arrives later.
        for split in [0, 1, 7, wire.len() / 2, wire.len()] {
            let (a, mut peer) = tokio::io::duplex(1024);
            let mut s = DeflateStream::new(a, wire[..split].to_vec());
            let rest = wire[split..].to_vec();
            let feeder = tokio::spawn(async move {
                peer.write_all(&rest).await.unwrap();
                peer
            });
            let mut got = vec![0u8; message.len()];
            s.read_exact(&mut got).await.unwrap();
            assert!(got == message, "split {split}");
            drop(feeder.await.unwrap());
            // Peer gone: EOF.
            assert_eq!(s.read(&mut [0u8; 8]).await.unwrap(), 0);
        }
    }

    #[tokio::test]
    async fn corrupt_input_is_an_error() {
        let (a, _peer) = tokio::io::duplex(64);
        let mut s = DeflateStream::new(a, vec![0xff; 32]);
        let err = s.read(&mut [0u8; 64]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn writer_is_held_back_when_the_wire_is_slow() {
        let (a, _peer) = tokio::io::duplex(4096);
        let mut s = DeflateStream::new(a, Vec::new());
        // Incompressible data and a peer that never reads: writes must stall, not buffer.
        let noise: Vec<u8> = data(8 << 20, 11)
            .into_iter()
            .enumerate()
            .map(|(i, b)| b ^ (i as u8).wrapping_mul(31))
            .collect();
        let stalled =
            tokio::time::timeout(std::time::Duration::from_millis(300), s.write_all(&noise)).await;
        assert!(stalled.is_err(), "write_all finished without a reader");
        assert!(
            s.out.capacity() <= MAX_PENDING_OUT + 3 * MAX_WRITE_IN,
            "buffer grew to {}",
            s.out.capacity()
        );
        assert!(s.stats().plain.written() < 1 << 20);
    }
}
