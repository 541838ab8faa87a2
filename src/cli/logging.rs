//! Log set-up from `-d` and `-l`.

use tracing_subscriber::EnvFilter;

/// Initialises logging with a base filter (`error` for the quiet UI, for instance);
/// `-d imap,sync,...` turns on debug output for those areas (`ALL` for everything).
/// Protocol logs never contain passwords (the IMAP layer redacts LOGIN and AUTHENTICATE).
pub fn init_with(debug: Option<&str>, logfile: Option<&str>, base: &str) -> anyhow::Result<()> {
    let mut filter = String::from(base);
    if let Some(d) = debug {
        for area in d.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match area.to_ascii_lowercase().as_str() {
                "all" => filter.push_str(",twinbox=trace"),
                a @ ("imap" | "maildir" | "sync" | "thread" | "state" | "tunnel") => {
                    filter.push_str(&format!(",twinbox::{a}=trace"))
                }
                other => anyhow::bail!(
                    "-d: unknown debug type '{other}' (expected imap, maildir, sync, thread, ALL)"
                ),
            }
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_target(false);
    match logfile {
        Some(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot open log file {path}: {e}"))?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(f))
                .try_init()
        }
        None => builder.with_writer(std::io::stderr).try_init(),
    }
    .map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}
