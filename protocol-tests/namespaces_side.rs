//! A [`MailSide`] for servers doveadm cannot reach (Cyrus, Courier, a dovecot with a
//! prefixed namespace): it speaks IMAP with the session layer only (no store, no namespace
//! mapping of twinbox's), and spells names itself from what the test knows of the server:
//! the personal prefix and separator.
#![allow(dead_code)]

use std::future::Future;

use anyhow::{anyhow, Context, Result};
use imap_types::flag::StoreType;
use twinbox::imap::commands::FetchItems;
use twinbox::imap::types::AppendMessage;
use twinbox::imap::{utf7, ConnectOptions, Session};
use twinbox::testbed::message_sha256_hex;

use crate::support::sync::{MailSide, Msg};

/// One account on an IMAP server with a known personal prefix and separator.
pub struct NsSide {
    /// How to connect (a tunnel or a login).
    pub opts: ConnectOptions,
    /// The personal namespace prefix (`INBOX.` or empty).
    pub prefix: String,
    /// The hierarchy separator.
    pub sep: char,
    /// The `[Repository]` lines after the name (type, host, login or tunnel).
    pub repo: String,
    /// For messages.
    pub label: String,
}

fn block<T>(f: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?
        .block_on(f)
}

impl NsSide {
    /// The server's full name of a neutral name (UTF-8).
    pub fn native(&self, mailbox: &str) -> String {
        if mailbox == "INBOX" {
            return "INBOX".into();
        }
        format!(
            "{}{}",
            self.prefix,
            mailbox.replace('/', &self.sep.to_string())
        )
    }

    fn raw(&self, mailbox: &str) -> Vec<u8> {
        utf7::encode(&self.native(mailbox)).into_bytes()
    }

    /// Every selectable mailbox as the server names it (full names, UTF-8).
    pub fn server_names(&self) -> Result<Vec<String>> {
        block(async {
            let mut s = Session::connect(&self.opts).await?;
            let l = s.list("", "*", false).await?;
            s.logout().await?;
            let mut v: Vec<String> = l
                .into_iter()
                .filter(|m| m.selectable())
                .map(|m| m.name)
                .collect();
            v.sort();
            Ok(v)
        })
    }

    async fn fetch_all(&self, s: &mut Session, mailbox: &str) -> Result<Vec<(u32, Msg)>> {
        let info = s.select(&self.raw(mailbox), true, None).await?;
        let mut out = Vec::new();
        if info.exists == 0 {
            return Ok(out);
        }
        let items = FetchItems {
            flags: true,
            body: true,
            ..Default::default()
        };
        s.uid_fetch("1:*", items, None, false, &mut |m| {
            let mut flags: Vec<String> = m
                .flags
                .unwrap_or_default()
                .into_iter()
                .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                .collect();
            flags.sort();
            flags.dedup();
            out.push((
                m.uid,
                Msg {
                    sha256: message_sha256_hex(m.body.as_deref().unwrap_or_default()),
                    flags,
                },
            ));
            Ok(())
        })
        .await?;
        Ok(out)
    }

    async fn uid_of(&self, s: &mut Session, mailbox: &str, sha: &str) -> Result<u32> {
        let all = self.fetch_all(s, mailbox).await?;
        let found: Vec<u32> = all
            .iter()
            .filter(|(_, m)| m.sha256 == sha)
            .map(|(u, _)| *u)
            .collect();
        match found.as_slice() {
            [u] => {
                s.select(&self.raw(mailbox), false, None).await?;
                Ok(*u)
            }
            _ => Err(anyhow!(
                "{}: {} messages with hash {sha} in {mailbox}",
                self.label,
                found.len()
            )),
        }
    }

    fn store(&self, mailbox: &str, sha: &str, kind: StoreType, flags: &[&str]) -> Result<()> {
        block(async {
            let mut s = Session::connect(&self.opts).await?;
            let uid = self.uid_of(&mut s, mailbox, sha).await?;
            let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
            s.uid_store(&uid.to_string(), kind, &flags, None, true)
                .await?;
            s.logout().await?;
            Ok(())
        })
    }
}

impl MailSide for NsSide {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn repository(&self, name: &str) -> String {
        format!("[Repository {name}]\n{}\n", self.repo)
    }

    fn mailboxes(&self) -> Result<Vec<String>> {
        let mut v: Vec<String> = self
            .server_names()?
            .into_iter()
            .filter_map(|n| {
                if n.eq_ignore_ascii_case("INBOX") {
                    return Some("INBOX".to_string());
                }
                n.strip_prefix(self.prefix.as_str())
                    .map(|r| r.replace(self.sep, "/"))
            })
            .collect();
        v.sort();
        Ok(v)
    }

    fn messages(&self, mailbox: &str) -> Result<Vec<Msg>> {
        block(async {
            let mut s = Session::connect(&self.opts).await?;
            let mut v: Vec<Msg> = self
                .fetch_all(&mut s, mailbox)
                .await?
                .into_iter()
                .map(|(_, m)| m)
                .collect();
            s.logout().await?;
            v.sort();
            Ok(v)
        })
    }

    fn create_mailbox(&self, mailbox: &str) -> Result<()> {
        block(async {
            let mut s = Session::connect(&self.opts).await?;
            s.create(&self.raw(mailbox))
                .await
                .with_context(|| format!("{}: CREATE {}", self.label, self.native(mailbox)))?;
            s.logout().await?;
            Ok(())
        })
    }

    fn delete_mailbox(&self, mailbox: &str) -> Result<()> {
        block(async {
            let mut s = Session::connect(&self.opts).await?;
            s.delete(&self.raw(mailbox))
                .await
                .with_context(|| format!("{}: DELETE {}", self.label, self.native(mailbox)))?;
            s.logout().await?;
            Ok(())
        })
    }

    fn append(&self, mailbox: &str, raw: &[u8], flags: &[&str]) -> Result<()> {
        self.seed(mailbox, &[raw.to_vec()], flags)
    }

    fn seed(&self, mailbox: &str, raws: &[Vec<u8>], flags: &[&str]) -> Result<()> {
        block(async {
            let mut s = Session::connect(&self.opts).await?;
            let name = self.raw(mailbox);
            if mailbox != "INBOX" {
                let _ = s.create(&name).await; // exists already: NO
            }
            let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
            for r in raws {
                let m = AppendMessage {
                    flags: &flags,
                    internaldate: None,
                    body: r.into(),
                };
                s.append(&name, &[m])
                    .await
                    .with_context(|| format!("{}: APPEND {}", self.label, self.native(mailbox)))?;
            }
            s.logout().await?;
            Ok(())
        })
    }

    fn add_flags(&self, mailbox: &str, sha256: &str, flags: &[&str]) -> Result<()> {
        self.store(mailbox, sha256, StoreType::Add, flags)
    }

    fn remove_flags(&self, mailbox: &str, sha256: &str, flags: &[&str]) -> Result<()> {
        self.store(mailbox, sha256, StoreType::Remove, flags)
    }

    fn expunge(&self, mailbox: &str, sha256: &str) -> Result<()> {
        block(async {
            let mut s = Session::connect(&self.opts).await?;
            let uid = self.uid_of(&mut s, mailbox, sha256).await?;
            s.uid_store(
                &uid.to_string(),
                StoreType::Add,
                &["\\Deleted".to_string()],
                None,
                true,
            )
            .await?;
            s.expunge_all().await?;
            s.logout().await?;
            Ok(())
        })
    }
}
