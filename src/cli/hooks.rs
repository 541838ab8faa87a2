//! Per-account settings around a sync: `presynchook` / `postsynchook`, and the restrictions
//! (`maxage` / `startdate`, `maxsize`, `readonly`, `expunge`, `sync_deletes`) handed to
//! the engine.

use std::collections::HashMap;

use anyhow::Context;

use crate::config::{Account, CommandSpec, Config, RepositoryKind, Since};
use crate::sync::filter::{MessageFilter, Restrictions};
use crate::sync::{sync_account, AccountReport, AccountSpec};

/// The hooks of one account and what they are told.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// `presynchook`.
    pub pre: Option<CommandSpec>,
    /// `postsynchook`.
    pub post: Option<CommandSpec>,
    /// Environment given to both: `TWINBOX_ACCOUNT`, `TWINBOX_LOCAL_REPOSITORY`,
    /// `TWINBOX_REMOTE_REPOSITORY`.
    pub env: Vec<(String, String)>,
}

impl Hooks {
    /// The hooks of `account`.
    pub fn of(account: &Account) -> Hooks {
        Hooks {
            pre: account.presynchook.clone(),
            post: account.postsynchook.clone(),
            env: vec![
                ("TWINBOX_ACCOUNT".into(), account.name.clone()),
                (
                    "TWINBOX_LOCAL_REPOSITORY".into(),
                    account.local_repository.clone(),
                ),
                (
                    "TWINBOX_REMOTE_REPOSITORY".into(),
                    account.remote_repository.clone(),
                ),
            ],
        }
    }

    /// The hooks of every account of `cfg`, by account name.
    pub fn all(cfg: &Config) -> HashMap<String, Hooks> {
        cfg.accounts
            .iter()
            .map(|a| (a.name.clone(), Hooks::of(a)))
            .collect()
    }
}

/// Runs a hook command with the account in its environment; fails unless it exits 0.
pub async fn run_hook(
    which: &str,
    cmd: &CommandSpec,
    env: &[(String, String)],
    extra: &[(&str, &str)],
) -> anyhow::Result<()> {
    let mut c = tokio::process::Command::from(cmd.to_command());
    c.stdin(std::process::Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    for (k, v) in extra {
        c.env(k, v);
    }
    let status = c
        .status()
        .await
        .with_context(|| format!("{which} `{cmd}` could not be started"))?;
    if !status.success() {
        anyhow::bail!("{which} `{cmd}` failed ({status})");
    }
    Ok(())
}

/// Syncs an account between its hooks: a failing `presynchook` skips the account (an
/// error); `postsynchook` runs after every sync that was attempted, with
/// `TWINBOX_SYNC_STATUS` set to `ok`, `partial` or `failed`, and its failure is an error.
/// A dry run runs no hook.
pub async fn sync_with_hooks(
    spec: &AccountSpec,
    hooks: Option<&Hooks>,
) -> anyhow::Result<AccountReport> {
    let empty = Hooks::default();
    let hooks = hooks.unwrap_or(&empty);
    let dry = spec.options.dry_run;
    if let Some(pre) = &hooks.pre {
        if !dry {
            run_hook("presynchook", pre, &hooks.env, &[])
                .await
                .context("account skipped")?;
        }
    }
    let mut res = sync_account(spec).await;
    if dry {
        if let Ok(r) = &mut res {
            let hooks = [("presynchook", &hooks.pre), ("postsynchook", &hooks.post)];
            for (which, h) in hooks {
                if let Some(h) = h {
                    r.planned.push(format!("run {which} `{h}`"));
                }
            }
        }
    }
    if let Some(post) = &hooks.post {
        if !dry {
            let status = match &res {
                Ok(r) if r.failures.is_empty() => "ok",
                Ok(_) => "partial",
                Err(_) => "failed",
            };
            let hook = run_hook(
                "postsynchook",
                post,
                &hooks.env,
                &[("TWINBOX_SYNC_STATUS", status)],
            )
            .await;
            if let (Ok(_), Err(e)) = (&res, hook) {
                return Err(e);
            }
        }
    }
    res
}

/// The start of the day `since` names, or `days` ago, in seconds since the epoch (UTC).
pub fn since_epoch(since: Since, now: i64) -> i64 {
    match since {
        Since::Days(n) => now - i64::from(n) * 86_400,
        Since::Date(d) => {
            chrono::NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc().timestamp())
                .unwrap_or(0)
        }
    }
}

/// The engine restrictions of `account`: its message filter and each side's `readonly`,
/// `expunge` and `sync_deletes`.
pub fn restrictions(cfg: &Config, account: &Account) -> Restrictions {
    let now = chrono::Utc::now().timestamp();
    let mut r = Restrictions {
        filter: MessageFilter {
            min_date: account.since.map(|s| since_epoch(s, now)),
            max_size: account.maxsize,
        },
        ..Default::default()
    };
    for (i, name) in [&account.local_repository, &account.remote_repository]
        .into_iter()
        .enumerate()
    {
        if let Some(repo) = cfg.repository(name) {
            r.read_only[i] = repo.readonly;
            r.sync_deletes[i] = repo.sync_deletes;
            r.expunge[i] = match &repo.kind {
                RepositoryKind::Imap(imap) => imap.expunge,
                RepositoryKind::Maildir(_) => true,
            };
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Date;

    #[test]
    fn since_dates() {
        assert_eq!(since_epoch(Since::Days(2), 1_000_000), 1_000_000 - 172_800);
        let d = Date {
            year: 2024,
            month: 3,
            day: 1,
        };
        assert_eq!(since_epoch(Since::Date(d), 0), 1_709_251_200);
    }
}
