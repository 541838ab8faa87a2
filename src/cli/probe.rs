//! `twinbox probe`: connect, authenticate, print capabilities and mailboxes with STATUS.

use std::time::{Duration, Instant};

use argh::FromArgs;

use crate::imap::session::Compression;
use crate::imap::transport::TlsOptions;
use crate::imap::{ConnectOptions, Endpoint, Security, Session};

/// Connect to a server and print its capabilities and mailboxes.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "probe")]
pub struct ProbeArgs {
    /// server host name
    #[argh(option)]
    pub host: Option<String>,
    /// server port (default 993 with --ssl, else 143)
    #[argh(option)]
    pub port: Option<u16>,
    /// implicit TLS (imaps)
    #[argh(switch)]
    pub ssl: bool,
    /// require STARTTLS
    #[argh(switch)]
    pub starttls: bool,
    /// a command speaking IMAP on stdin/stdout and greeting PREAUTH (no login)
    #[argh(option)]
    pub tunnel: Option<String>,
    /// login name
    #[argh(option)]
    pub user: Option<String>,
    /// read the password from this environment variable
    #[argh(option)]
    pub password_env: Option<String>,
    /// read the password from the first line this shell command prints
    #[argh(option)]
    pub password_cmd: Option<String>,
    /// PEM file of CA certificates to trust
    #[argh(option)]
    pub cacert: Option<String>,
    /// SHA-256 fingerprint of the server certificate or its public key (repeatable)
    #[argh(option)]
    pub fingerprint: Vec<String>,
    /// COMPRESS=DEFLATE: auto (default: only across a network), yes, no
    #[argh(option, default = "String::from(\"auto\")")]
    pub compress: String,
    /// allow a password over an unencrypted connection to a non-loopback host
    #[argh(switch)]
    pub allow_plaintext: bool,
}

/// Runs the probe.
pub async fn run(a: ProbeArgs) -> anyhow::Result<()> {
    let endpoint = if let Some(cmd) = &a.tunnel {
        Endpoint::Tunnel {
            command: cmd.clone(),
            preauth: true,
        }
    } else {
        let host = a
            .host
            .clone()
            .ok_or_else(|| anyhow::anyhow!("--host or --tunnel is required"))?;
        let security = match (a.ssl, a.starttls) {
            (true, true) => anyhow::bail!("--ssl and --starttls exclude each other"),
            (true, false) => Security::Tls,
            (false, true) => Security::StartTls,
            _ => Security::Plain,
        };
        let port = a.port.unwrap_or(if a.ssl { 993 } else { 143 });
        Endpoint::Tcp {
            host,
            port,
            security,
        }
    };
    let mut opts = ConnectOptions::new(endpoint);
    opts.tls = TlsOptions {
        ca_file: a.cacert.clone().map(Into::into),
        fingerprints: a.fingerprint.clone(),
        ..Default::default()
    };
    opts.compress = match a.compress.to_ascii_lowercase().as_str() {
        "auto" => Compression::Auto,
        "yes" | "on" | "true" => Compression::Always,
        "no" | "off" | "false" => Compression::Never,
        other => anyhow::bail!("--compress: expected auto, yes or no, got {other:?}"),
    };
    opts.allow_plaintext_login = a.allow_plaintext;
    opts.timeout = Duration::from_secs(30);
    opts.label = "probe".into();
    if a.tunnel.is_none() {
        let user = a
            .user
            .clone()
            .ok_or_else(|| anyhow::anyhow!("--user is required"))?;
        opts.password = Some(crate::cli::password::obtain(
            a.password_env.as_deref(),
            a.password_cmd.as_deref(),
            &format!("Password for {user}: "),
        )?);
        opts.user = Some(user);
    }
    let t0 = Instant::now();
    let mut s = Session::connect(&opts).await?;
    println!("connected in {} ms", t0.elapsed().as_millis());
    println!(
        "encrypted: {}   compressed: {}   qresync: {}   condstore: {}",
        yes(s.encrypted),
        yes(s.compressed),
        yes(s.qresync),
        yes(s.condstore)
    );
    println!("capabilities: {}", s.capabilities());
    let before = s.counters().snapshot().2;
    let t1 = Instant::now();
    let list = s.list("", "*", true).await?;
    let round_trips = s.counters().snapshot().2 - before;
    println!(
        "{} mailboxes ({} command{}, {} ms{}):",
        list.len(),
        round_trips,
        if round_trips == 1 { "" } else { "s" },
        t1.elapsed().as_millis(),
        if s.has("LIST-STATUS") {
            ", LIST-STATUS"
        } else {
            ", LIST + STATUS"
        }
    );
    // NAMESPACE only where advertised here (a sync asks it anyway: Courier answers it
    // unadvertised), so the probe sends nothing a server did not offer.
    let root = if s.has("NAMESPACE") {
        let ns = s.namespaces().await?;
        let root = crate::store::namespace::FolderRoot::new(ns, None, Default::default());
        for line in root.describe() {
            println!("{line}");
        }
        Some(root)
    } else {
        println!("namespaces: NAMESPACE not advertised (a sync still asks for it)");
        None
    };
    println!(
        "  {:<32} {:>9} {:>9} {:>12} {:>14}  delim  twinbox name",
        "mailbox", "messages", "uidnext", "uidvalidity", "highestmodseq"
    );
    for m in &list {
        let st = m.status.unwrap_or_default();
        let f = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
        println!(
            "  {:<32} {:>9} {:>9} {:>12} {:>14}  {}{}{}",
            m.name,
            f(st.messages.map(u64::from)),
            f(st.uidnext.map(u64::from)),
            f(st.uidvalidity.map(u64::from)),
            f(st.highestmodseq),
            m.delimiter
                .map(String::from)
                .unwrap_or_else(|| "NIL".into()),
            match &root {
                Some(r) => match r.to_relative(&m.name) {
                    Some(n) => format!("    {}", crate::sync::names::to_neutral(&n, m.delimiter)),
                    None => "    (not synced: outside the personal namespace)".to_string(),
                },
                None => String::new(),
            },
            if m.selectable() {
                ""
            } else {
                "  (not selectable)"
            }
        );
    }
    s.logout().await?;
    Ok(())
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
