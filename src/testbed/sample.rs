//! Deterministic sample mail: the same seed always gives the same bytes.

use std::fmt::Write as _;

/// A small, fast, deterministic PRNG (SplitMix64); good enough for test data.
#[derive(Debug, Clone)]
pub struct SampleRng(u64);

impl SampleRng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SampleRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A random element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const FIRST: &[&str] = &[
    "Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy",
];
const LAST: &[&str] = &[
    "Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Thomas", "Roberts",
];
const UTF8_NAMES: &[&str] = &["Jürgen Groß", "Zoë Ångström", "Søren Kierkegård", "李小龍"];
const WORDS: &[&str] = &[
    "mail", "sync", "folder", "message", "server", "client", "update", "meeting", "report",
    "budget", "draft", "review", "release", "patch", "quarter", "lunch", "invoice", "ticket",
    "schedule", "backup", "network", "the", "a", "and", "of", "to", "in", "for", "with", "on",
    "is", "we", "please", "thanks", "today", "tomorrow", "next", "week", "status", "notes",
];
const UTF8_SUBJECTS: &[&str] = &[
    "Grüße aus Köln",
    "Réunion à 14h — ordre du jour",
    "Смета на квартал",
    "東京オフィスの件",
    "Ελληνικά δοκιμή ✓",
];
const DAYS: &[&str] = &["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: &[&str] = &[
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Civil date (y, m, d) from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// An RFC 5322 date-time for seconds since the epoch, in UTC (`+0000`).
pub fn rfc5322_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

fn sentence(rng: &mut SampleRng, max_len: usize) -> String {
    let mut line = String::new();
    loop {
        let w = *rng.pick(WORDS);
        if !line.is_empty() && line.len() + 1 + w.len() > max_len {
            break;
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(w);
    }
    line
}

/// `count` deterministic RFC 5322 messages with CRLF line endings: Message-ID, Date, From,
/// To, Subject, MIME headers and a text body. Sizes are mostly 2–10 KB with an occasional
/// message of about 100 KB (one in 25); about one in six has raw 8-bit UTF-8 in its
/// Subject and From (as RFC 6532 allows). Dates advance from 2023-11-14 by a few hours
/// per message. Different seeds give different messages (and Message-IDs).
pub fn sample_messages(seed: u64, count: usize) -> Vec<Vec<u8>> {
    let mut rng = SampleRng::new(seed ^ 0x0074_7769_6E62_6F78);
    let mut date: i64 = 1_700_000_000;
    (0..count)
        .map(|i| {
            date += 600 + rng.below(4 * 3600) as i64;
            sample_message(&mut rng, seed, i, date)
        })
        .collect()
}

fn sample_message(rng: &mut SampleRng, seed: u64, index: usize, date: i64) -> Vec<u8> {
    let utf8 = rng.below(6) == 0;
    let target = if rng.below(25) == 0 {
        90_000 + rng.below(20_000) as usize
    } else {
        2_000 + rng.below(8_000) as usize
    };
    let (from_name, to_name) = if utf8 {
        (
            (*rng.pick(UTF8_NAMES)).to_string(),
            format!("{} {}", rng.pick(FIRST), rng.pick(LAST)),
        )
    } else {
        (
            format!("{} {}", rng.pick(FIRST), rng.pick(LAST)),
            format!("{} {}", rng.pick(FIRST), rng.pick(LAST)),
        )
    };
    let addr = |name: &str| {
        let local: String = name
            .chars()
            .filter(|c| c.is_ascii_alphabetic() || *c == ' ')
            .collect::<String>()
            .to_ascii_lowercase()
            .replace(' ', ".");
        let local = if local.trim_matches('.').is_empty() {
            "user".to_string()
        } else {
            local.trim_matches('.').to_string()
        };
        format!("{local}@example.test")
    };
    let subject = if utf8 {
        format!("{} #{index}", rng.pick(UTF8_SUBJECTS))
    } else {
        let mut s = sentence(rng, 50);
        if let Some(first) = s.get(..1) {
            s = first.to_ascii_uppercase() + &s[1..];
        }
        format!("{s} #{index}")
    };

    let mut m = String::with_capacity(target + 1024);
    let _ = write!(
        m,
        "Message-ID: <{seed:x}.{index}.{:08x}@twinbox.test>\r\n",
        rng.next_u64() as u32
    );
    let _ = write!(m, "Date: {}\r\n", rfc5322_date(date));
    let _ = write!(m, "From: {from_name} <{}>\r\n", addr(&from_name));
    let _ = write!(m, "To: {to_name} <{}>\r\n", addr(&to_name));
    let _ = write!(m, "Subject: {subject}\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    m.push_str(if utf8 {
        "Content-Transfer-Encoding: 8bit\r\n"
    } else {
        "Content-Transfer-Encoding: 7bit\r\n"
    });
    m.push_str("\r\n");
    let _ = write!(m, "Hello {to_name},\r\n\r\n");
    while m.len() < target {
        let n = 1 + rng.below(6);
        for _ in 0..n {
            m.push_str(&sentence(rng, 72));
            m.push_str("\r\n");
        }
        m.push_str("\r\n");
    }
    let _ = write!(m, "-- \r\n{from_name}\r\n");
    m.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc5322() {
        assert_eq!(rfc5322_date(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_700_000_000),
            "Tue, 14 Nov 2023 22:13:20 +0000"
        );
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn messages_are_deterministic_crlf_and_sized() {
        let a = sample_messages(7, 60);
        assert_eq!(a, sample_messages(7, 60));
        assert_ne!(a, sample_messages(8, 60));
        let mut big = 0;
        let mut utf8 = 0;
        for m in &a {
            // Every LF is preceded by CR, and the header ends with an empty line.
            for (i, b) in m.iter().enumerate() {
                if *b == b'\n' {
                    assert!(i > 0 && m[i - 1] == b'\r', "bare LF");
                }
            }
            let text = std::str::from_utf8(m).expect("utf-8");
            let head = text.split("\r\n\r\n").next().expect("header");
            for h in ["Message-ID: <", "Date: ", "From: ", "To: ", "Subject: "] {
                assert!(head.contains(h), "missing {h}");
            }
            assert!(m.len() >= 2_000, "too small: {}", m.len());
            if m.len() > 80_000 {
                big += 1;
            } else {
                assert!(m.len() <= 10_300, "too big: {}", m.len());
            }
            if !head.is_ascii() {
                utf8 += 1;
            }
        }
        assert!(utf8 > 0, "no 8-bit headers in 60 messages");
        assert!(big <= 10);
        let ids: std::collections::HashSet<_> = a
            .iter()
            .map(|m| String::from_utf8_lossy(&m[..60]).to_string())
            .collect();
        assert_eq!(ids.len(), a.len(), "Message-IDs must be unique");
    }
}
