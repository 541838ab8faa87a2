//! Command line: offlineimap's flags for the sync, plus subcommands.

use argh::FromArgs;

pub mod admin;
pub mod check;
pub mod demo;
pub mod hooks;
pub mod import;
pub mod import_lambda;
pub mod info;
pub mod logging;
pub mod mbnames;
pub mod password;
pub mod probe;
pub mod run;

/// twinbox: keeps two mail stores identical in both directions.
#[derive(FromArgs, Debug)]
pub struct Args {
    /// configuration file (default ~/.config/twinbox/config, then ~/.twinboxrc)
    #[argh(option, short = 'c')]
    pub config: Option<String>,
    /// accounts to sync, comma-separated (default: [general] accounts)
    #[argh(option, short = 'a')]
    pub accounts: Option<String>,
    /// folders to sync, comma-separated remote names (default: all)
    #[argh(option, short = 'f')]
    pub folders: Option<String>,
    /// run once, ignoring autorefresh
    #[argh(switch, short = 'o')]
    pub once: bool,
    /// quick sync: skip reading remote flag changes where that costs a full listing
    #[argh(switch, short = 'q')]
    pub quick: bool,
    /// single connection, single account at a time
    #[argh(switch, short = '1')]
    pub single: bool,
    /// override a configuration option: [SECTION:]OPTION=VALUE (repeatable)
    #[argh(option, short = 'k')]
    pub override_: Vec<String>,
    /// user interface: quiet, basic, ttyui, machineui
    #[argh(option, short = 'u')]
    pub ui: Option<String>,
    /// log to this file
    #[argh(option, short = 'l')]
    pub logfile: Option<String>,
    /// debug output for: imap, maildir, sync, thread, ALL (comma-separated)
    #[argh(option, short = 'd')]
    pub debug: Option<String>,
    /// list every action that would be taken and change nothing
    #[argh(switch)]
    pub dry_run: bool,
    /// print repositories, connection details, capabilities and folders, then exit
    #[argh(switch)]
    pub info: bool,
    /// print the version and exit
    #[argh(switch)]
    pub version: bool,
    #[argh(subcommand)]
    /// a subcommand instead of a sync
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    /// Connect to a server and print its capabilities and mailboxes.
    Probe(probe::ProbeArgs),
    /// Run a two-way sync against a private dovecot with sample mail.
    Demo(demo::DemoArgs),
    /// Verify the state against both servers (read-only); exit 1 on inconsistencies.
    Check(check::CheckArgs),
    /// Rename a mailbox on both sides and in the state.
    Rename(admin::RenameArgs),
    /// Delete a mailbox on both sides and in the state (with --yes).
    Delete(admin::DeleteArgs),
    /// Translate an offlineimap configuration into a twinbox one.
    ImportConfig(import::ImportArgs),
}

/// Parses the process's arguments (`-h` is taken for `--help`, as offlineimap has it).
/// On `--help` prints the help and exits 0; on a usage error prints it and exits 2.
pub fn args_from_env() -> Args {
    let argv: Vec<String> = std::env::args().collect();
    let cmd = argv
        .first()
        .map(|p| {
            std::path::Path::new(p)
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| p.clone())
        })
        .unwrap_or_else(|| "twinbox".to_string());
    let rest: Vec<&str> = argv
        .iter()
        .skip(1)
        .map(|a| if a == "-h" { "--help" } else { a.as_str() })
        .collect();
    match Args::from_args(&[&cmd], &rest) {
        Ok(a) => a,
        Err(e) => match e.status {
            Ok(()) => {
                println!("{}", e.output);
                std::process::exit(0)
            }
            Err(()) => {
                eprintln!("{}", e.output);
                std::process::exit(2)
            }
        },
    }
}

/// Runs the command line; returns the process exit code.
pub fn run(args: Args) -> i32 {
    if args.version {
        println!("twinbox {}", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    if args.command.is_none() && !args.info {
        return sync_command(&args);
    }
    // Subcommands print their own results: log lines only for warnings, or to a log file.
    let base = if args.logfile.is_some() {
        "warn,twinbox=info"
    } else {
        "warn"
    };
    if let Err(e) = logging::init_with(args.debug.as_deref(), args.logfile.as_deref(), base) {
        eprintln!("twinbox: {e:#}");
        return 2;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("twinbox: cannot start the runtime: {e}");
            return 2;
        }
    };
    let opts = run_options(&args);
    match args.command {
        Some(Command::Probe(p)) => match rt.block_on(probe::run(p)) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("twinbox probe: {e:#}");
                2
            }
        },
        Some(Command::Demo(d)) => match rt.block_on(demo::run(d)) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("twinbox demo: {e:#}");
                2
            }
        },
        Some(Command::Check(c)) => rt.block_on(check::run(opts, c)),
        Some(Command::Rename(r)) => rt.block_on(admin::rename(opts, r)),
        Some(Command::Delete(d)) => rt.block_on(admin::delete(opts, d)),
        Some(Command::ImportConfig(i)) => import::run(i),
        None => rt.block_on(info::run(opts)),
    }
}

/// The sync options the global flags give.
fn run_options(args: &Args) -> run::RunOptions {
    let split = |s: &Option<String>| {
        s.as_ref().map(|v| {
            v.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect::<Vec<_>>()
        })
    };
    run::RunOptions {
        config: args.config.as_ref().map(Into::into),
        accounts: split(&args.accounts),
        folders: split(&args.folders),
        quick: args.quick,
        single: args.single,
        overrides: args.override_.clone(),
        dry_run: args.dry_run,
    }
}

/// The sync itself: one shot or daemon, with the chosen UI (see [`crate::daemon`]).
fn sync_command(args: &Args) -> i32 {
    let opts = run_options(args);
    let mode = crate::daemon::ModeOptions {
        once: args.once,
        ui: args.ui.clone(),
        logfile: args.logfile.clone(),
        debug: args.debug.clone(),
    };
    crate::daemon::main(opts, mode)
}
