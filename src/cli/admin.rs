//! Explicit mailbox administration on both sides and in the state: `twinbox rename OLD NEW`
//! and `twinbox delete NAME --yes`, plus the account plumbing `check` and `--info` share.
//!
//! Names are the remote side's, untranslated, with `/` between levels (as for `-f`); the
//! local name follows from the account's `nametrans`.

use anyhow::Context;
use argh::FromArgs;

use super::run::{self, RunOptions, EXIT_ERROR, EXIT_OK, EXIT_PARTIAL};
use crate::config::{Account, Config};
use crate::state::StateDb;
use crate::store::{MailboxInfo, Store};
use crate::sync::engine::open_store;
use crate::sync::names::from_neutral;
use crate::sync::plan::Side;
use crate::sync::AccountSpec;

/// Rename a mailbox on both sides and in the state (resumable: run it again if interrupted).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "rename")]
pub struct RenameArgs {
    /// current name (remote spelling, `/` between levels)
    #[argh(positional)]
    pub old: String,
    /// new name (remote spelling, `/` between levels)
    #[argh(positional)]
    pub new: String,
}

/// Delete a mailbox on both sides and forget it in the state.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "delete")]
pub struct DeleteArgs {
    /// mailbox (remote spelling, `/` between levels)
    #[argh(positional)]
    pub name: String,
    /// really delete (without it, only says what would be deleted)
    #[argh(switch)]
    pub yes: bool,
}

/// The accounts `-a` names, or all configured ones.
pub fn selected_accounts<'a>(
    cfg: &'a Config,
    opts: &RunOptions,
) -> anyhow::Result<Vec<&'a Account>> {
    match &opts.accounts {
        None => Ok(cfg.accounts.iter().collect()),
        Some(names) => names
            .iter()
            .map(|n| {
                cfg.account(n)
                    .ok_or_else(|| anyhow::anyhow!("no account named {n:?} in the configuration"))
            })
            .collect(),
    }
}

/// The one account a mailbox command applies to: `-a NAME`, or the only account.
pub fn one_account<'a>(cfg: &'a Config, opts: &RunOptions) -> anyhow::Result<&'a Account> {
    let accounts = selected_accounts(cfg, opts)?;
    match accounts.as_slice() {
        [a] => Ok(a),
        _ => anyhow::bail!(
            "this command works on one account: name it with -a (configured: {})",
            cfg.accounts
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Both sides of an account, connected and listed.
pub struct Opened {
    /// The engine's view of the account.
    pub spec: AccountSpec,
    /// Local and remote stores.
    pub stores: [Box<dyn Store>; 2],
    /// Each side's mailboxes.
    pub lists: [Vec<MailboxInfo>; 2],
    /// Each side's hierarchy delimiter.
    pub delim: [Option<char>; 2],
}

impl Opened {
    /// Connects both sides of `account` and lists their mailboxes.
    pub async fn open(
        cfg: &Config,
        account: &Account,
        opts: &RunOptions,
    ) -> anyhow::Result<Opened> {
        let spec = run::account_spec(cfg, account, opts)?;
        let local = open_store(&spec.sides[0]).await.context("local")?;
        let remote = match open_store(&spec.sides[1]).await {
            Ok(r) => r,
            Err(e) => {
                let _ = local.close().await;
                return Err(e.context("remote"));
            }
        };
        let mut stores = [local, remote];
        let mut lists: [Vec<MailboxInfo>; 2] = Default::default();
        for s in Side::BOTH {
            match stores[s.i()].list().await {
                Ok(l) => lists[s.i()] = l,
                Err(e) => {
                    let [a, b] = stores;
                    let _ = tokio::join!(a.close(), b.close());
                    return Err(e.context(format!("listing the {} mailboxes", s.name())));
                }
            }
        }
        let delim = [0, 1].map(|s| {
            lists[s]
                .iter()
                .find(|m| m.name == "INBOX")
                .and_then(|m| m.delimiter)
                .or_else(|| lists[s].iter().find_map(|m| m.delimiter))
        });
        Ok(Opened {
            spec,
            stores,
            lists,
            delim,
        })
    }

    /// The native name on `side` of the mailbox whose remote neutral name is `name`.
    pub fn native(&self, account: &Account, side: Side, name: &str) -> anyhow::Result<String> {
        let n = match side {
            Side::Remote => name.to_string(),
            Side::Local => account.folders.to_local(name),
        };
        from_neutral(&n, self.delim[side.i()]).map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// The listed mailbox called `native` on `side`.
    pub fn find(&self, side: Side, native: &str) -> Option<&MailboxInfo> {
        self.lists[side.i()].iter().find(|m| m.name == native)
    }

    /// Logs out of both sides.
    pub async fn close(self) {
        let [a, b] = self.stores;
        let _ = tokio::join!(a.close(), b.close());
    }
}

fn check_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty() || name.eq_ignore_ascii_case("INBOX") {
        anyhow::bail!("INBOX cannot be renamed or deleted this way");
    }
    Ok(())
}

/// `twinbox rename OLD NEW`.
pub async fn rename(opts: RunOptions, a: RenameArgs) -> i32 {
    match rename_inner(&opts, &a).await {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("twinbox rename: {e:#}");
            EXIT_ERROR
        }
    }
}

async fn rename_inner(opts: &RunOptions, a: &RenameArgs) -> anyhow::Result<()> {
    check_name(&a.old)?;
    check_name(&a.new)?;
    if a.old == a.new {
        anyhow::bail!("the old and new names are the same");
    }
    let cfg = run::load_config(opts)?;
    let account = one_account(&cfg, opts)?;
    let folders = &account.folders;
    folders
        .check_round_trip(std::slice::from_ref(&a.new), &[])
        .map_err(|e| anyhow::anyhow!("the new name does not translate back to itself: {e}"))?;
    if !(folders.remote_filter.accepts(&a.new)
        && folders.local_filter.accepts(&folders.to_local(&a.new)))
    {
        anyhow::bail!(
            "{:?} is excluded by the folderfilter of account {}: it would no longer be synced",
            a.new,
            account.name
        );
    }
    let _lock = run::lock_account(&cfg.general.metadata, &account.name)?;
    let mut o = Opened::open(&cfg, account, opts).await?;
    let res = rename_sides(&mut o, account, a).await;
    o.close().await;
    res?;
    let path = &o_state_path(&cfg, account);
    if path.exists() {
        let mut db = StateDb::open(path, cfg.general.fsync)?;
        let rows = db.mailboxes()?;
        if rows.iter().any(|m| m.name == a.new) {
            anyhow::bail!(
                "the state already has a mailbox {:?}: delete it first (twinbox delete)",
                a.new
            );
        }
        let prefix = format!("{}/", a.old);
        let moved: Vec<(i64, String)> = rows
            .iter()
            .filter_map(|m| {
                if m.name == a.old {
                    Some((m.id, a.new.clone()))
                } else {
                    m.name
                        .strip_prefix(&prefix)
                        .map(|rest| (m.id, format!("{}/{rest}", a.new)))
                }
            })
            .collect();
        db.write("rename", |w| {
            for (id, name) in &moved {
                w.rename_mailbox(*id, name)?;
            }
            Ok(())
        })?;
    }
    println!("{}: renamed {:?} to {:?}", account.name, a.old, a.new);
    Ok(())
}

fn o_state_path(cfg: &Config, account: &Account) -> std::path::PathBuf {
    cfg.general.metadata.join(format!("{}.db", account.name))
}

async fn rename_sides(o: &mut Opened, account: &Account, a: &RenameArgs) -> anyhow::Result<()> {
    let mut plan = Vec::new();
    for s in Side::BOTH {
        let old = o.native(account, s, &a.old)?;
        let new = o.native(account, s, &a.new)?;
        let (has_old, has_new) = (o.find(s, &old).is_some(), o.find(s, &new).is_some());
        match (has_old, has_new) {
            (true, true) => anyhow::bail!(
                "both {old:?} and {new:?} exist on the {} side; nothing renamed",
                s.name()
            ),
            (true, false) => {
                if o.spec.sides[s.i()].read_only {
                    anyhow::bail!("the {} side is read-only; nothing renamed", s.name());
                }
                plan.push((s, old, new));
            }
            (false, true) => println!(
                "{}: {new:?} already exists on the {} side (an earlier rename)",
                account.name,
                s.name()
            ),
            (false, false) => println!("{}: no {old:?} on the {} side", account.name, s.name()),
        }
    }
    for (s, old, new) in plan {
        crate::fault::step("rename");
        o.stores[s.i()]
            .rename(&old, &new)
            .await
            .with_context(|| format!("on the {} side", s.name()))?;
        println!(
            "{}: {} side: renamed {old:?} to {new:?}",
            account.name,
            s.name()
        );
    }
    Ok(())
}

/// `twinbox delete NAME [--yes]`.
pub async fn delete(opts: RunOptions, a: DeleteArgs) -> i32 {
    match delete_inner(&opts, &a).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("twinbox delete: {e:#}");
            EXIT_ERROR
        }
    }
}

async fn delete_inner(opts: &RunOptions, a: &DeleteArgs) -> anyhow::Result<i32> {
    check_name(&a.name)?;
    let cfg = run::load_config(opts)?;
    let account = one_account(&cfg, opts)?;
    let _lock = run::lock_account(&cfg.general.metadata, &account.name)?;
    let mut o = Opened::open(&cfg, account, opts).await?;
    let res = delete_sides(&mut o, account, a).await;
    o.close().await;
    let done = res?;
    if !a.yes {
        return Ok(EXIT_PARTIAL);
    }
    let path = o_state_path(&cfg, account);
    let mut forgotten = false;
    if path.exists() {
        let mut db = StateDb::open(&path, cfg.general.fsync)?;
        if let Some(row) = db.mailboxes()?.into_iter().find(|m| m.name == a.name) {
            db.write("delete", |w| w.delete_mailbox(row.id))?;
            forgotten = true;
        }
    }
    if done == 0 && !forgotten {
        anyhow::bail!("no mailbox {:?} on either side nor in the state", a.name);
    }
    println!(
        "{}: deleted {:?}{}",
        account.name,
        a.name,
        if forgotten {
            " and forgot it in the state"
        } else {
            ""
        }
    );
    Ok(EXIT_OK)
}

/// Deletes (or, without `--yes`, describes) the mailbox on each side; returns how many
/// sides had it.
async fn delete_sides(o: &mut Opened, account: &Account, a: &DeleteArgs) -> anyhow::Result<usize> {
    let mut targets = Vec::new();
    for s in Side::BOTH {
        let native = o.native(account, s, &a.name)?;
        if let Some(m) = o.find(s, &native) {
            if o.spec.sides[s.i()].read_only {
                anyhow::bail!(
                    "the {} side is read-only: {native:?} cannot be deleted there; nothing deleted",
                    s.name()
                );
            }
            let count = m
                .status
                .map(|st| format!("{} message(s)", st.messages))
                .unwrap_or_else(|| "message count unknown".to_string());
            targets.push((s, native, count));
        }
    }
    if !a.yes {
        for (s, native, count) in &targets {
            println!(
                "{}: would delete {native:?} on the {} side ({count})",
                account.name,
                s.name()
            );
        }
        println!(
            "{}: would forget {:?} in the state; run again with --yes to delete",
            account.name, a.name
        );
        return Ok(targets.len());
    }
    for (s, native, count) in &targets {
        crate::fault::step("delete");
        o.stores[s.i()]
            .delete(native)
            .await
            .with_context(|| format!("on the {} side", s.name()))?;
        println!(
            "{}: {} side: deleted {native:?} ({count})",
            account.name,
            s.name()
        );
    }
    Ok(targets.len())
}
