//! The files of the docker-compose testbed (`docker/`) that come from the same generator as
//! the private test instances, so that what the tests exercise and what users run cannot
//! drift: the dovecot configurations, the passwd-file and the sample mail.
//!
//! `cargo test` compares the committed files with [`docker_files`]; after changing the
//! generator, `TWINBOX_BLESS=1 cargo test --lib testbed::docker` rewrites them.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::config::{
    capabilities_without_condstore, render_config, render_passwd, ConfigPaths, DovecotOptions,
    MailLayout, ServiceAccounts, TestUser,
};
use super::sample::sample_messages;

/// The uid and gid that own the mail inside the dovecot containers (`vmail`).
pub const CONTAINER_MAIL_ID: u32 = 5000;

/// Sample folders seeded into `alice` on the remote server: (folder, seed, messages).
pub const SAMPLE_FOLDERS: &[(&str, u64, usize)] = &[
    ("INBOX", 1, 12),
    ("Lists/rust", 2, 8),
    ("Archive/2024", 3, 6),
    ("Entwürfe", 4, 3),
];

/// Users of the container servers: `alice` holds the sample mail on `remote`, `bob` is the
/// empty account on `local`; both servers have both users.
fn users() -> Vec<TestUser> {
    vec![
        TestUser::new("alice", "secret"),
        TestUser::new("bob", "secret"),
    ]
}

fn options(capabilities: Option<String>) -> DovecotOptions {
    let mut o = DovecotOptions::default()
        .users(users())
        .tls(true)
        .compress(true)
        .layout(MailLayout::Fs)
        .command_log(false)
        .mail_log(false)
        .fsync(true);
    if let Some(c) = capabilities {
        o = o.capabilities(c);
    }
    o
}

fn paths() -> ConfigPaths {
    ConfigPaths {
        instance_name: "twinbox-testbed".into(),
        listen: "*".into(),
        imap_port: 143,
        imaps_port: 993,
        base_dir: "/run/dovecot".into(),
        state_dir: "/var/lib/dovecot".into(),
        log_path: "/dev/stderr".into(),
        passwd_file: "/etc/twinbox-testbed/passwd".into(),
        ssl_cert: "/run/twinbox-tls/cert.pem".into(),
        ssl_key: "/run/twinbox-tls/key.pem".into(),
        ssl_dh: None,
        accounts: ServiceAccounts::System,
    }
}

/// The flags a sample message gets, by its index: some seen, some flagged, one keyword.
pub fn sample_flags(index: usize) -> &'static str {
    match index % 5 {
        0 | 1 => "\\Seen",
        2 => "\\Seen \\Flagged",
        3 => "$Important",
        _ => "",
    }
}

/// Every generated file under `docker/`, as (path relative to the repository, contents).
pub fn docker_files() -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let p = paths();
    out.push((
        "docker/dovecot/dovecot.conf".into(),
        render_config(&options(None), &p).into_bytes(),
    ));
    out.push((
        "docker/dovecot/dovecot-fallback.conf".into(),
        render_config(&options(Some(capabilities_without_condstore())), &p).into_bytes(),
    ));
    out.push((
        "docker/dovecot/passwd".into(),
        render_passwd(
            &users(),
            CONTAINER_MAIL_ID,
            CONTAINER_MAIL_ID,
            std::path::Path::new("/srv/mail"),
        )
        .into_bytes(),
    ));
    let mut manifest = String::from(
        "# folder<TAB>file<TAB>flags: the sample mail seeded into alice on first start\n",
    );
    let mut n = 0;
    for (folder, seed, count) in SAMPLE_FOLDERS {
        for (i, m) in sample_messages(*seed, *count).into_iter().enumerate() {
            n += 1;
            let file = format!("{n:03}.eml");
            let _ = writeln!(manifest, "{folder}\t{file}\t{}", sample_flags(i));
            out.push((format!("docker/sample/{file}").into(), m));
        }
    }
    out.push(("docker/sample/manifest".into(), manifest.into_bytes()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed `docker/` files are exactly what the generator makes (or, with
    /// `TWINBOX_BLESS=1`, are rewritten to be).
    #[test]
    fn committed_docker_files_match_the_generator() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let bless = std::env::var_os("TWINBOX_BLESS").is_some();
        let mut stale = Vec::new();
        for (rel, want) in docker_files() {
            let path = root.join(&rel);
            let have = std::fs::read(&path).ok();
            if have.as_deref() != Some(want.as_slice()) {
                if bless {
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir).expect("creating docker/ directories");
                    }
                    std::fs::write(&path, &want).expect("writing a docker/ file");
                } else {
                    stale.push(rel.display().to_string());
                }
            }
        }
        assert!(
            stale.is_empty(),
            "docker/ files differ from the generator (run TWINBOX_BLESS=1 cargo test --lib \
             testbed::docker): {stale:?}"
        );
    }

    #[test]
    fn fallback_config_hides_condstore() {
        let files = docker_files();
        let get = |name: &str| {
            files
                .iter()
                .find(|(p, _)| p.ends_with(name))
                .map(|(_, c)| String::from_utf8_lossy(c).into_owned())
                .unwrap_or_default()
        };
        assert!(!get("dovecot.conf").contains("imap_capability"));
        let fb = get("dovecot-fallback.conf");
        assert!(fb.contains("imap_capability"));
        assert!(!fb.contains("CONDSTORE") && !fb.contains("QRESYNC"));
    }
}
