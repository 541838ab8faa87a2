//! Private dovecot instances on loopback, for the demo, the tests and the benchmarks.
//!
//! [`Dovecot::start`] writes a configuration ([`render_config`]) into a temporary directory,
//! starts `dovecot -F` on free loopback ports and waits until it accepts connections; dropping
//! the [`Dovecot`] stops it and removes the directory. Its `doveadm`-based helpers
//! ([`Dovecot::append`], [`Dovecot::list_messages`], ...) are the tests' independent view of
//! the server, and [`Dovecot::preauth_tunnel_command`] gives a PREAUTH IMAP command on the
//! same mail. [`sample_messages`] makes deterministic test mail.
//!
//! Root and non-root: started as root (CI), dovecot runs its services as its own system
//! users and the mail belongs to `nobody:nogroup` (dovecot's `imap` refuses to run as root);
//! started as an ordinary user, every service and the mail run as that user.
//!
//! Needs Debian's `dovecot-imapd` (2.3): `/usr/sbin/dovecot`, `/usr/bin/doveadm`,
//! `/usr/lib/dovecot/imap`. [`Cyrus`] and [`Courier`] are second and third server
//! implementations for the namespace tests (binaries unpacked with [`unpacked`]).

mod config;
mod courier;
mod cyrus;
mod debs;
pub mod docker;
mod dovecot;
mod rawlog;
mod sample;
mod sshd;
mod tls;

pub use config::{
    capabilities_without, capabilities_without_condstore, render_config, render_passwd,
    ConfigPaths, DovecotOptions, MailLayout, ServiceAccounts, TestUser,
    CAPABILITIES_BARE_IMAP4REV1, DEBIAN_DH_PARAMS, DOVECOT_DEFAULT_CAPABILITIES,
};
pub use courier::Courier;
pub use cyrus::{Cyrus, CyrusOptions, CYRUS_MASTER};
pub use debs::{deb_cache, unpacked};
pub use dovecot::{
    message_sha256_hex, normalize_crlf, Dovecot, MailboxStatus, MessageSummary, SessionBytes,
    IMAP_BIN,
};
pub use rawlog::parse_rawlog_commands;
pub use sample::{rfc5322_date, sample_messages, SampleRng};
pub use sshd::{Sshd, SSHD_BIN};
pub use tls::TestPki;
