//! The sync run: configuration to account specs, one lock per account, the engine, the
//! summary and the exit code (0 all synced, 1 some mailboxes failed, 2 configuration or
//! connection error).

use std::io::Write;

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{
    self, Account, AuthMechanism, Config, FolderMapping, ImapRepository, RepositoryKind, Security,
    Tunnel,
};
use crate::imap::{self, Compression, ConnectOptions, Endpoint, Password};
use crate::store::ScanMode;
use crate::sync::names::FolderRules;
use crate::sync::plan::Policy;
use crate::sync::{AccountSpec, SideSpec, StoreSpec, SyncOptions};

/// What the command line asks of a run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `-c`.
    pub config: Option<PathBuf>,
    /// `-a`.
    pub accounts: Option<Vec<String>>,
    /// `-f`.
    pub folders: Option<Vec<String>>,
    /// `-q`.
    pub quick: bool,
    /// `-1`.
    pub single: bool,
    /// `-k`.
    pub overrides: Vec<String>,
    /// `--dry-run`.
    pub dry_run: bool,
}

/// Exit status of a run.
pub const EXIT_OK: i32 = 0;
/// Some mailboxes failed.
pub const EXIT_PARTIAL: i32 = 1;
/// Configuration or connection error.
pub const EXIT_ERROR: i32 = 2;

impl FolderRules for FolderMapping {
    fn to_local(&self, remote: &str) -> String {
        FolderMapping::to_local(self, remote)
    }
    fn to_remote(&self, local: &str) -> String {
        FolderMapping::to_remote(self, local)
    }
    fn accept_remote(&self, remote: &str) -> bool {
        self.remote_filter.accepts(remote) || self.remote_includes.iter().any(|i| i == remote)
    }
    fn accept_local(&self, local: &str) -> bool {
        self.local_filter.accepts(local) || self.local_includes.iter().any(|i| i == local)
    }
    fn check(&self, remote: &[String], local: &[String]) -> Result<(), String> {
        self.check_round_trip(remote, local)
            .map_err(|e| e.to_string())
    }
}

/// Loads the configuration named by `-c` (or the default path) with `-k` overrides.
pub fn load_config(opts: &RunOptions) -> anyhow::Result<Config> {
    let env = config::Env::from_process();
    let path = config::default_config_path(opts.config.as_deref(), &env)?;
    let cfg = Config::load(&path, &opts.overrides)?;
    for w in &cfg.inert {
        eprintln!("twinbox: warning: {w}");
    }
    Ok(cfg)
}

fn connect_options(
    repo_name: &str,
    r: &ImapRepository,
    cfg: &Config,
    label: String,
) -> anyhow::Result<ConnectOptions> {
    let host = r.host.clone().unwrap_or_default();
    let endpoint = match &r.tunnel {
        Some(Tunnel::Preauth(c)) => Endpoint::Tunnel {
            command: c.text().to_string(),
            preauth: true,
        },
        Some(Tunnel::Transport(c)) => Endpoint::Tunnel {
            command: c.text().to_string(),
            preauth: false,
        },
        Some(Tunnel::Ssh(s)) => Endpoint::Ssh(s.clone()),
        None => {
            if host.is_empty() {
                anyhow::bail!("[Repository {repo_name}]: remotehost is not set");
            }
            Endpoint::Tcp {
                host: host.clone(),
                port: r.port,
                security: match r.security {
                    Security::Tls => imap::Security::Tls,
                    Security::StartTls => imap::Security::StartTls,
                    Security::Plain => imap::Security::Plain,
                },
            }
        }
    };
    let needs_login = !matches!(
        endpoint,
        Endpoint::Ssh(_) | Endpoint::Tunnel { preauth: true, .. }
    );
    let mut o = ConnectOptions::new(endpoint);
    o.tls = r.tls.clone();
    o.label = label;
    o.compress = match r.compression {
        None => Compression::Auto,
        Some(true) => Compression::Always,
        Some(false) => Compression::Never,
    };
    o.max_message_size = u32::try_from(r.maxmessagesize).unwrap_or(u32::MAX);
    o.disabled_capabilities = r.disable_extensions.clone();
    o.send_id = r.send_id;
    o.reference = r.reference.clone();
    o.namespaces = r.namespaces;
    if let Some(t) = cfg.general.socktimeout {
        o.timeout = t;
    }
    o.auth_mechanisms = r
        .auth_mechanisms
        .iter()
        .map(|m| match m {
            AuthMechanism::Plain => "PLAIN".to_string(),
            AuthMechanism::Login => "LOGIN".to_string(),
        })
        .collect();
    if needs_login {
        let ctx = config::PasswordContext::from_env(&config::Env::from_process());
        o.user = Some(r.resolve_user(&ctx)?);
        o.password = Some(Password::new(r.resolve_password_with(&ctx)?.expose()));
    }
    Ok(o)
}

/// The store of a Maildir repository: native, or dovecot's imap binary as a PREAUTH
/// tunnel on it.
fn maildir_store(
    cfg: &Config,
    account: &Account,
    repo: &config::Repository,
    m: &config::MaildirRepository,
    label: String,
    dry_run: bool,
) -> anyhow::Result<StoreSpec> {
    use crate::store::maildir::{dovecot, Inbox, Layout, MaildirOptions};
    let layout = Layout {
        root: m.root.clone(),
        sep: m.sep,
        inbox: match m.inbox {
            config::InboxLayout::Root => Inbox::Root,
            config::InboxLayout::Folder => Inbox::Folder,
        },
        utf8: cfg.utf8_folder_names(account),
    };
    Ok(match &m.engine {
        config::MaildirEngine::Native => {
            // One UID map per account and repository: the account's lock guards it.
            let map = cfg
                .general
                .metadata
                .join(format!("{}.{}.uids.db", account.name, repo.name));
            let mut o = MaildirOptions::new(layout, map);
            o.fsync = cfg.fsync_for(repo);
            o.customflags = m.customflags.clone();
            o.dry_run = dry_run;
            StoreSpec::Maildir(Box::new(o))
        }
        config::MaildirEngine::Dovecot { imap_path } => {
            let command = dovecot::tunnel_command(imap_path, &layout)?;
            let mut o = ConnectOptions::new(Endpoint::Tunnel {
                command,
                preauth: true,
            });
            o.label = label;
            o.compress = Compression::Never;
            StoreSpec::Imap(Box::new(o))
        }
    })
}

/// Builds the engine's view of an account.
pub fn account_spec(
    cfg: &Config,
    account: &Account,
    opts: &RunOptions,
) -> anyhow::Result<AccountSpec> {
    let mut sides = Vec::new();
    let mut max_conn = 1;
    for (which, name) in [
        ("local", &account.local_repository),
        ("remote", &account.remote_repository),
    ] {
        let repo = cfg
            .repository(name)
            .ok_or_else(|| anyhow::anyhow!("[Account {}]: no repository {name}", account.name))?;
        let store = match &repo.kind {
            RepositoryKind::Imap(r) => {
                max_conn = max_conn.max(r.maxconnections);
                StoreSpec::Imap(Box::new(connect_options(
                    name,
                    r,
                    cfg,
                    format!("{}/{which}", account.name),
                )?))
            }
            RepositoryKind::Maildir(m) => maildir_store(
                cfg,
                account,
                repo,
                m,
                format!("{}/{which}", account.name),
                opts.dry_run,
            )
            .with_context(|| format!("[Repository {name}]"))?,
        };
        sides.push(SideSpec {
            store,
            read_only: repo.readonly,
            create_folders: repo.createfolders,
        });
    }
    let remote = sides
        .pop()
        .ok_or_else(|| anyhow::anyhow!("internal: sides"))?;
    let local = sides
        .pop()
        .ok_or_else(|| anyhow::anyhow!("internal: sides"))?;
    let options = SyncOptions {
        mode: if opts.quick {
            ScanMode::Quick
        } else {
            ScanMode::Full
        },
        dry_run: opts.dry_run,
        folders: opts.folders.clone(),
        rules: Arc::new(account.folders.clone()),
        policy: Policy::default(),
        max_connections: if opts.single { 1 } else { max_conn },
        fsync: cfg.general.fsync,
        restrictions: super::hooks::restrictions(cfg, account),
        ..SyncOptions::default()
    };
    Ok(AccountSpec {
        name: account.name.clone(),
        sides: [local, remote],
        state_path: cfg.general.metadata.join(format!("{}.db", account.name)),
        options,
    })
}

/// An exclusive lock on an account, held while it syncs.
pub struct AccountLock {
    _file: std::fs::File,
}

/// Takes the account's lock under the metadata directory, or says who holds it.
pub fn lock_account(metadata: &Path, account: &str) -> anyhow::Result<AccountLock> {
    use std::os::unix::fs::OpenOptionsExt;
    crate::state::create_private_dir(metadata)?;
    // Large messages in transit are spooled here (private, on disk) rather than in $TMPDIR,
    // which may be memory.
    crate::imap::spool::set_spool_dir(metadata.to_path_buf());
    let path = metadata.join(format!("{account}.lock"));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot open lock file {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0)?;
            writeln!(file, "{}", std::process::id())?;
            Ok(AccountLock { _file: file })
        }
        Err(_) => {
            // The holder writes its pid just after taking the lock: give it a moment.
            let mut holder = String::new();
            for _ in 0..10 {
                holder = std::fs::read_to_string(&path).unwrap_or_default();
                if !holder.trim().is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let holder = match holder.trim() {
                "" => "unknown".to_string(),
                h => h.to_string(),
            };
            anyhow::bail!(
                "account {account} is being synced by another twinbox (pid {holder}); lock file {}",
                path.display()
            )
        }
    }
}

/// Syncs the selected accounts once with the basic UI (the demo's path; the command line
/// goes through [`crate::daemon::main`], which adds the UI choice, logging and daemon mode).
pub async fn run(opts: RunOptions) -> i32 {
    let cfg = match load_config(&opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("twinbox: {e:#}");
            return EXIT_ERROR;
        }
    };
    let mode = crate::daemon::ModeOptions {
        once: true,
        ui: None,
        logfile: None,
        debug: None,
    };
    crate::daemon::run(cfg, opts, mode, crate::ui::UiKind::Basic.build()).await
}

/// Default wait between syncs when none is configured.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);
