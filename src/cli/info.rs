//! `--info`: what twinbox would work with: each account's repositories and connection
//! details (never a password), each server's capabilities, and the folder list with its
//! translation and selection. Changes nothing.

use std::collections::BTreeMap;

use super::admin::{selected_accounts, Opened};
use super::run::{self, RunOptions, EXIT_ERROR, EXIT_OK};
use crate::config::{
    Account, Config, PasswordSource, Repository, RepositoryKind, Security, Since, Tunnel,
};
use crate::state::StateDb;
use crate::sync::names::to_neutral;
use crate::sync::plan::Side;

/// Prints the information; exit 0, or 2 if the configuration or a connection fails.
pub async fn run(opts: RunOptions) -> i32 {
    let cfg = match run::load_config(&opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("twinbox: {e:#}");
            return EXIT_ERROR;
        }
    };
    let accounts = match selected_accounts(&cfg, &opts) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("twinbox: {e:#}");
            return EXIT_ERROR;
        }
    };
    println!("twinbox {}", env!("CARGO_PKG_VERSION"));
    println!("metadata: {}", cfg.general.metadata.display());
    let mut status = EXIT_OK;
    for account in accounts {
        print_account(&cfg, account);
        if let Err(e) = print_servers(&cfg, account, &opts).await {
            eprintln!("twinbox: {}: {e:#}", account.name);
            status = EXIT_ERROR;
        }
    }
    status
}

fn print_account(cfg: &Config, a: &Account) {
    println!("\n[Account {}]", a.name);
    if let Some(t) = a.autorefresh {
        println!("  autorefresh: {} s", t.as_secs());
    }
    match a.since {
        Some(Since::Days(n)) => println!("  maxage: {n} days"),
        Some(Since::Date(d)) => println!("  startdate: {d}"),
        None => {}
    }
    if let Some(m) = a.maxsize {
        println!("  maxsize: {m} bytes");
    }
    for (k, h) in [
        ("presynchook", &a.presynchook),
        ("postsynchook", &a.postsynchook),
    ] {
        if let Some(h) = h {
            println!("  {k}: {h}");
        }
    }
    for (role, name) in [
        ("local", &a.local_repository),
        ("remote", &a.remote_repository),
    ] {
        if let Some(r) = cfg.repository(name) {
            print_repository(role, r);
        }
    }
}

fn print_repository(role: &str, r: &Repository) {
    println!("  {role} repository {}:", r.name);
    let flags = format!(
        "readonly {}, createfolders {}, sync_deletes {}",
        yn(r.readonly),
        yn(r.createfolders),
        yn(r.sync_deletes)
    );
    match &r.kind {
        RepositoryKind::Imap(i) => {
            let endpoint = match &i.tunnel {
                Some(Tunnel::Preauth(c)) => format!("preauthtunnel `{c}`"),
                Some(Tunnel::Transport(c)) => format!("transporttunnel `{c}`"),
                Some(Tunnel::Ssh(s)) => format!("ssh {s:?}"),
                None => format!(
                    "{}:{} ({})",
                    i.host.as_deref().unwrap_or("?"),
                    i.port,
                    match i.security {
                        Security::Tls => "TLS",
                        Security::StartTls => "STARTTLS required",
                        Security::Plain => "no TLS",
                    }
                ),
            };
            println!(
                "    type: {}, {endpoint}",
                if i.gmail { "Gmail" } else { "IMAP" }
            );
            if let Some(u) = &i.user {
                println!("    user: {u}");
            }
            let pass = match &i.password {
                PasswordSource::Command(c) => format!("remotepasscmd `{c}`"),
                PasswordSource::Inline(_) => "remotepass (in the configuration)".to_string(),
                PasswordSource::File(f) => format!("remotepassfile {}", f.display()),
                PasswordSource::NetrcOrPrompt => "~/.netrc, else a prompt".to_string(),
                PasswordSource::NotNeeded => "not needed".to_string(),
            };
            println!("    password: {pass}");
            println!(
                "    auth_mechanisms: {:?}, usecompression: {}, maxconnections: {}, expunge: {}",
                i.auth_mechanisms,
                i.compression
                    .map_or("auto", |c| if c { "yes" } else { "no" }),
                i.maxconnections,
                yn(i.expunge)
            );
            println!("    tls: {:?}", i.tls);
        }
        RepositoryKind::Maildir(m) => {
            println!("    type: Maildir, {} (sep {:?})", m.root.display(), m.sep);
        }
    }
    println!("    {flags}");
}

fn yn(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

async fn print_servers(cfg: &Config, account: &Account, opts: &RunOptions) -> anyhow::Result<()> {
    let mut opts = opts.clone();
    opts.dry_run = true;
    let o = Opened::open(cfg, account, &opts).await?;
    for s in Side::BOTH {
        println!("  {} server: {}", s.name(), o.stores[s.i()].describe());
        for line in o.stores[s.i()].details() {
            println!("    {line}");
        }
        println!("    hierarchy delimiter: {:?}", o.delim[s.i()]);
    }
    let path = cfg.general.metadata.join(format!("{}.db", account.name));
    let known: Vec<String> = if path.exists() {
        StateDb::open_readonly(&path)?
            .mailboxes()?
            .into_iter()
            .map(|m| m.name)
            .collect()
    } else {
        Vec::new()
    };
    let rules = &account.folders;
    // remote neutral name -> (on remote, on local)
    let mut names: BTreeMap<String, [bool; 2]> = BTreeMap::new();
    for m in &o.lists[1] {
        names.entry(to_neutral(&m.name, m.delimiter)).or_default()[1] = true;
    }
    for m in &o.lists[0] {
        let n = rules.to_remote(&to_neutral(&m.name, m.delimiter));
        names.entry(n).or_default()[0] = true;
    }
    println!("  folders (remote -> local):");
    for (name, [local, remote]) in &names {
        let l = rules.to_local(name);
        let selected = (rules.remote_filter.accepts(name)
            || rules.remote_includes.iter().any(|i| i == name))
            && (rules.local_filter.accepts(&l) || rules.local_includes.iter().any(|i| i == &l));
        let mut notes = Vec::new();
        if !selected {
            notes.push("excluded by folderfilter");
        }
        if !remote {
            notes.push("local only");
        }
        if !local {
            notes.push("remote only");
        }
        if known.iter().any(|k| k == name) {
            notes.push("synced before");
        }
        println!(
            "    {name} -> {l}{}",
            if notes.is_empty() {
                String::new()
            } else {
                format!("  [{}]", notes.join(", "))
            }
        );
    }
    o.close().await;
    Ok(())
}
