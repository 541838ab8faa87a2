//! The markdown table, the target ratios and the SVG chart.

use std::fmt::Write as _;
use std::time::Duration;

use crate::{Measure, Params, Row};

fn secs(m: Option<Measure>) -> String {
    m.map(|m| format!("{:.3}", m.wall.as_secs_f64()))
        .unwrap_or_else(|| "–".into())
}

fn bytes(m: Option<Measure>) -> String {
    m.map(|m| format!("{} / {}", human(m.net.down), human(m.net.up)))
        .unwrap_or_else(|| "–".into())
}

fn cmds(m: Option<Measure>) -> String {
    m.map(|m| m.net.commands.to_string())
        .unwrap_or_else(|| "–".into())
}

fn human(b: u64) -> String {
    if b >= 10_000_000 {
        format!("{:.1} MB", b as f64 / 1e6)
    } else if b >= 10_000 {
        format!("{:.1} KB", b as f64 / 1e3)
    } else {
        format!("{b} B")
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "–".into(),
    }
}

fn find<'a>(rows: &'a [Row], label: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.label == label && r.error.is_none())
}

fn wall(m: Option<Measure>) -> Option<f64> {
    m.map(|m| m.wall.as_secs_f64())
}

/// The results as markdown: parameters, the table, and each twinbox row's target ratios.
pub fn markdown(
    p: &Params,
    rows: &[Row],
    list_status: Option<u64>,
    started: chrono::DateTime<chrono::Utc>,
    took: Duration,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Run {} on {} ({} cores), {:.0} s: {} mailboxes × {} messages (×{} for the last \
         no-op column), median time (mean bytes and commands) of {} runs for no-op and incremental, one first sync. \
         Bytes: server→client / client→server on the wire for the remote account (through \
         the counting relay); commands: sent by the client to the remote server. A LIST-STATUS \
         answer for the account is {} bytes.\n",
        started.format("%Y-%m-%d %H:%M UTC"),
        hostname(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        took.as_secs_f64(),
        p.mailboxes,
        p.messages,
        p.scale,
        p.runs,
        list_status.unwrap_or(0)
    );
    s.push_str(
        "| tool | first sync s | first bytes ↓/↑ | no-op s | no-op bytes ↓/↑ | no-op cmds | \
         incremental s | incr. bytes ↓/↑ | incr. cmds | no-op ×scale s | ×scale bytes ↓/↑ | \
         first sync ×scale s | peak RSS MB | check |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let rss = [r.first, r.noop, r.incr, r.noop_big, r.first_big]
            .iter()
            .flatten()
            .map(|m| m.rss_kb)
            .max()
            .unwrap_or(0);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} |",
            r.label,
            secs(r.first),
            bytes(r.first),
            secs(r.noop),
            bytes(r.noop),
            cmds(r.noop),
            secs(r.incr),
            bytes(r.incr),
            cmds(r.incr),
            secs(r.noop_big),
            bytes(r.noop_big),
            secs(r.first_big),
            rss as f64 / 1024.0,
            match &r.error {
                None => "ok".to_string(),
                Some(e) => format!("FAILED: {}", e.replace('|', "/").replace('\n', " ")),
            }
        );
    }
    let mbsync = find(rows, "mbsync IMAP↔Maildir");
    let offlineimap = find(rows, "offlineimap3 IMAP↔Maildir");
    s.push_str(
        "\nTarget ratios per twinbox row (targets: no-op ≤ 0.1× mbsync and ≤ 1× interimap; \
         no-op bytes ≤ 1.2× LIST-STATUS; no-op ×scale / no-op ≤ 1.2; incremental bytes with \
         COMPRESS ≤ 0.5× interimap's; first sync mbsync/twinbox ≥ 2 and \
         offlineimap3/twinbox ≥ 4):\n\n\
         | twinbox row | no-op / mbsync | no-op / interimap | no-op bytes / LIST-STATUS | \
         no-op ×scale / no-op | incr. bytes / interimap | first: mbsync / twinbox | \
         first: offlineimap3 / twinbox | first ×scale: mbsync / twinbox | \
         first ×scale: offlineimap3 / twinbox |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows.iter().filter(|r| r.label.starts_with("twinbox")) {
        let z = r.label.ends_with("+COMPRESS");
        let inter = find(
            rows,
            if z {
                "interimap IMAP↔IMAP +COMPRESS"
            } else {
                "interimap IMAP↔IMAP"
            },
        );
        let total = |m: Option<Measure>| m.map(|m| (m.net.up + m.net.down) as f64);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.label,
            ratio(wall(r.noop), mbsync.and_then(|m| wall(m.noop))),
            ratio(wall(r.noop), inter.and_then(|m| wall(m.noop))),
            ratio(total(r.noop), list_status.map(|b| b as f64)),
            ratio(wall(r.noop_big), wall(r.noop)),
            ratio(total(r.incr), inter.and_then(|m| total(m.incr))),
            ratio(mbsync.and_then(|m| wall(m.first)), wall(r.first)),
            ratio(offlineimap.and_then(|m| wall(m.first)), wall(r.first)),
            ratio(mbsync.and_then(|m| wall(m.first_big)), wall(r.first_big)),
            ratio(
                offlineimap.and_then(|m| wall(m.first_big)),
                wall(r.first_big)
            ),
        );
    }
    s
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this machine".into())
}

const COLORS: &[&str] = &[
    "#1f77b4", "#aec7e8", "#2ca02c", "#98df8a", "#9467bd", "#c5b0d5", "#ff7f0e", "#ffbb78",
    "#d62728", "#8c564b",
];

/// No-op resync time against messages per mailbox, one line per tool (log-scale time).
pub fn svg(p: &Params, rows: &[Row]) -> String {
    let (w, h, left, right, top, bottom) = (760.0, 420.0, 70.0, 250.0, 30.0, 50.0);
    let x_max = (p.messages * p.scale.max(1)) as f64;
    let pts: Vec<(usize, Vec<(f64, f64)>)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut v = Vec::new();
            if let Some(m) = r.noop {
                v.push((p.messages as f64, m.wall.as_secs_f64()));
            }
            if let Some(m) = r.noop_big {
                v.push((x_max, m.wall.as_secs_f64()));
            }
            (i, v)
        })
        .collect();
    let all: Vec<f64> = pts
        .iter()
        .flat_map(|(_, v)| v.iter().map(|p| p.1))
        .collect();
    let lo = all
        .iter()
        .cloned()
        .fold(f64::MAX, f64::min)
        .max(1e-3)
        .log10()
        .floor();
    let hi = all
        .iter()
        .cloned()
        .fold(0.0, f64::max)
        .max(1e-2)
        .log10()
        .ceil()
        .max(lo + 1.0);
    let px = |x: f64| left + (x / x_max) * (w - left - right);
    let py = |y: f64| top + (hi - y.max(1e-4).log10()) / (hi - lo) * (h - top - bottom);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
    );
    let _ = writeln!(
        s,
        "<text x=\"{left}\" y=\"18\" font-size=\"14\">No-op resync time vs messages per mailbox \
         ({} mailboxes)</text>",
        p.mailboxes
    );
    let mut e = lo;
    while e <= hi {
        let y = py(10f64.powf(e));
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{} s</text>",
            w - right,
            left - 6.0,
            y + 4.0,
            10f64.powf(e)
        );
        e += 1.0;
    }
    for x in [0.0, p.messages as f64, x_max] {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            px(x),
            h - bottom + 18.0,
            x
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">messages per mailbox</text>\
         <line x1=\"{left}\" x2=\"{left}\" y1=\"{top}\" y2=\"{}\" stroke=\"black\"/>\
         <line x1=\"{left}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"black\"/>",
        (left + w - right) / 2.0,
        h - 12.0,
        h - bottom,
        w - right,
        h - bottom,
        h - bottom
    );
    for (n, (i, v)) in pts.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let dash = if rows[*i].label.starts_with("twinbox") {
            ""
        } else {
            " stroke-dasharray=\"6 3\""
        };
        let path: Vec<String> = v
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{c}\" stroke-width=\"2\"{dash}/>",
            path.join(" ")
        );
        for (x, y) in v {
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{c}\"/>",
                px(*x),
                py(*y)
            );
        }
        let ly = top + 10.0 + n as f64 * 18.0;
        let _ = writeln!(
            s,
            "<line x1=\"{}\" x2=\"{}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{c}\" stroke-width=\"2\"{dash}/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            w - right + 10.0,
            w - right + 30.0,
            w - right + 36.0,
            ly + 4.0,
            rows[*i].label
        );
    }
    s.push_str("</svg>\n");
    s
}
