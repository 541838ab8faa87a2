//! Reading dovecot's rawlog (`rawlog_dir`) back as a list of client commands.
//!
//! Dovecot writes each session's client input to `<time>.<pid>.<n>.in` (and output to
//! `.out`), with a `<secs>.<usecs> ` timestamp inserted at the start of every line of the
//! stream, literal data included. Stripping one timestamp per line gives back the exact byte
//! stream; after a successful `COMPRESS DEFLATE` that stream is raw deflate, which is inflated
//! before parsing goes on.

/// Removes the timestamp rawlog put at the start of each line.
fn strip_timestamps(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for line in data.split_inclusive(|b| *b == b'\n') {
        out.extend_from_slice(strip_one(line));
    }
    out
}

fn strip_one(line: &[u8]) -> &[u8] {
    let digits = |from: usize| {
        line[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let a = digits(0);
    if a == 0 || line.get(a) != Some(&b'.') {
        return line;
    }
    let b = digits(a + 1);
    if b == 0 || line.get(a + 1 + b) != Some(&b' ') {
        return line;
    }
    &line[a + 2 + b..]
}

/// The length announced by a `{n}`, `{n+}` or `{n-}` at the end of a line (CRLF removed).
fn literal_len(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|b| *b == b'{')?;
    let mut num = &inner[open + 1..];
    if let Some(n) = num.strip_suffix(b"+").or_else(|| num.strip_suffix(b"-")) {
        num = n;
    }
    if num.is_empty() || !num.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(num).ok()?.parse().ok()
}

/// Inflates raw deflate data, keeping what could be decoded if it is cut short.
fn inflate_lenient(data: &[u8]) -> Vec<u8> {
    let mut d = flate2::Decompress::new(false);
    let mut out = Vec::with_capacity(data.len() * 4 + 1024);
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(out.capacity().max(16 * 1024));
        }
        let consumed = d.total_in() as usize;
        let produced = d.total_out();
        let input = data.get(consumed..).unwrap_or(&[]);
        match d.decompress_vec(input, &mut out, flate2::FlushDecompress::Sync) {
            Ok(flate2::Status::StreamEnd) => break,
            Ok(_) => {
                if d.total_in() as usize == consumed && d.total_out() == produced {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    out
}

/// Whether the server answered `tag OK` (the reply to COMPRESS is sent uncompressed).
fn tagged_ok(output: &[u8], tag: &[u8]) -> bool {
    let mut want = tag.to_vec();
    want.extend_from_slice(b" OK");
    output
        .split(|b| *b == b'\n')
        .any(|l| l.len() >= want.len() && l[..want.len()].eq_ignore_ascii_case(&want))
}

/// Parses one rawlog session (`.in` and `.out` file contents) into client command lines.
///
/// Each entry is one command as the client sent it, its lines joined, literal data left out
/// (the `{n}` announcements stay), e.g. `a3 APPEND INBOX (\Seen) {2310+}`. Continuation
/// lines (`DONE` after IDLE, SASL responses) are entries of their own.
pub fn parse_rawlog_commands(input: &[u8], output: &[u8]) -> Vec<String> {
    let mut stream = strip_timestamps(input);
    let output = strip_timestamps(output);
    let mut commands = Vec::new();
    let mut pos = 0;
    while pos < stream.len() {
        let mut cmd: Vec<u8> = Vec::new();
        loop {
            let rest = &stream[pos..];
            let (line, next) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => (&rest[..i], pos + i + 1),
                None => (rest, stream.len()),
            };
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            cmd.extend_from_slice(line);
            pos = next;
            match literal_len(line) {
                Some(n) if pos < stream.len() => pos = (pos + n).min(stream.len()),
                _ => break,
            }
        }
        let text = String::from_utf8_lossy(&cmd).into_owned();
        let mut words = text.split_ascii_whitespace();
        let tag = words.next().unwrap_or("");
        let is_compress = words
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("COMPRESS"));
        if is_compress && tagged_ok(&output, tag.as_bytes()) {
            let inflated = inflate_lenient(&stream[pos..]);
            stream = inflated;
            pos = 0;
        }
        commands.push(text);
    }
    commands
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn strips_timestamps_and_literals() {
        let input = b"1795443474.102185 a1 LOGIN x y\r\n\
                      1795443474.102190 a2 APPEND INBOX {12+}\r\n\
                      1795443474.102191 hello\r\n\
                      1795443474.102192 world\r\n\
                      1795443474.102193 a3 NOOP\r\n";
        let cmds = parse_rawlog_commands(input, b"");
        assert_eq!(
            cmds,
            vec!["a1 LOGIN x y", "a2 APPEND INBOX {12+}", "a3 NOOP"]
        );
    }

    #[test]
    fn follows_compression() {
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(b"c SELECT INBOX\r\nd LOGOUT\r\n")
            .expect("deflate");
        let compressed = z.finish().expect("deflate");
        let mut input = b"1.5 b COMPRESS DEFLATE\r\n".to_vec();
        // rawlog inserts a timestamp after each \n of the compressed bytes too.
        let mut at_line_start = true;
        for &byte in &compressed {
            if at_line_start {
                input.extend_from_slice(b"2.7 ");
            }
            input.push(byte);
            at_line_start = byte == b'\n';
        }
        let output = b"1.6 b OK Begin compression.\r\n";
        let cmds = parse_rawlog_commands(&input, output);
        assert_eq!(
            cmds,
            vec!["b COMPRESS DEFLATE", "c SELECT INBOX", "d LOGOUT"]
        );
    }
}
