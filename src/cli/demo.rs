//! `twinbox demo`: a private dovecot on loopback with sample mail in one account, synced
//! into a second account by the normal sync path, changed on both sides, synced again.

use argh::FromArgs;

use crate::testbed::{sample_messages, Dovecot, DovecotOptions};

/// Run a two-way sync against a private dovecot with sample mail.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "demo")]
pub struct DemoArgs {
    /// messages per sample folder (default 40)
    #[argh(option, default = "40")]
    pub messages: usize,
}

/// Runs the demo; returns the exit status.
pub async fn run(a: DemoArgs) -> anyhow::Result<i32> {
    let dv = Dovecot::start(DovecotOptions::default())?;
    let folders = ["INBOX", "Lists/rust", "Archive/2024", "Entwürfe"];
    for (i, f) in folders.iter().enumerate() {
        let msgs = sample_messages(i as u64 + 1, a.messages);
        dv.seed_mailbox("alice", f, &msgs, &[])?;
    }
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("twinbox.conf");
    std::fs::write(&conf, dv.two_user_config("Demo", &dir.path().join("meta")))?;
    println!("demo: dovecot on 127.0.0.1:{} with {} sample messages for alice in {} folders; syncing into bob (config {})", dv.imap_port(), a.messages * folders.len(), folders.len(), conf.display());
    let opts = super::run::RunOptions {
        config: Some(conf.clone()),
        ..Default::default()
    };
    println!("\n1. first sync");
    let s1 = super::run::run(opts.clone()).await;
    println!("\n2. changes on both sides: a flag and an expunge on alice, a new message for bob");
    dv.add_flags("alice", "INBOX", 1, &["\\Flagged"])?;
    dv.expunge("alice", "Lists/rust", 2)?;
    dv.append(
        "bob",
        "INBOX",
        &sample_messages(99, 1).concat(),
        &["\\Seen"],
    )?;
    let s2 = super::run::run(opts.clone()).await;
    println!("\n3. no-op resync (opens no mailbox)");
    let s3 = super::run::run(opts).await;
    let mut same = true;
    for f in folders {
        let norm = |u: &str| -> anyhow::Result<Vec<(String, Vec<String>)>> {
            let mut v: Vec<(String, Vec<String>)> = dv
                .list_messages(u, f)?
                .into_iter()
                .map(|m| (m.sha256_of_body_hex, m.flags))
                .collect();
            v.sort();
            Ok(v)
        };
        if norm("alice")? != norm("bob")? {
            println!("demo: {f} differs between the sides!");
            same = false;
        }
    }
    println!(
        "\ndemo: both sides identical: {}",
        if same { "yes" } else { "NO" }
    );
    Ok(if same { s1.max(s2).max(s3) } else { 1 })
}
