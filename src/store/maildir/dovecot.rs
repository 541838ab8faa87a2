//! The dovecot engine: dovecot's own `imap` binary run as a pre-authenticated tunnel on
//! the Maildir, so the local side is a QRESYNC server and the sync is IMAP to IMAP.
//!
//! dovecot refuses to access mail as root. Run by an ordinary user, the tunnel runs as
//! that user. Run as root (cron jobs, containers), it runs as the owner of the Maildir root
//! through `setpriv`, so the files it writes keep that owner; a root-owned Maildir is
//! refused with an explanation (dovecot cannot use it). The system's dovecot.conf is not
//! read (`-c /dev/null`): the tunnel depends only on the options given here.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::Context;

use super::layout::{Inbox, Layout};

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-=:,+@".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// dovecot's `mail_location` for a layout.
pub fn mail_location(layout: &Layout) -> anyhow::Result<String> {
    let root = layout.root.display().to_string();
    if root.contains(':') {
        anyhow::bail!(
            "the Maildir path {root:?} contains ':', which dovecot's mail_location cannot hold"
        );
    }
    let mut loc = format!("maildir:{root}");
    if layout.sep == '/' {
        loc.push_str(":LAYOUT=fs");
    }
    if layout.utf8 {
        loc.push_str(":UTF-8");
    }
    if layout.inbox == Inbox::Folder {
        loc.push_str(&format!(":INBOX={root}/INBOX"));
    }
    Ok(loc)
}

fn user_name(uid: u32) -> Option<String> {
    // SAFETY: getpwuid returns a pointer to static storage or NULL; we copy the name out
    // before any other call can overwrite it.
    unsafe {
        let pw = libc::getpwuid(uid);
        if pw.is_null() || (*pw).pw_name.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// The shell command of the tunnel for a Maildir tree, using the `imap` binary at `imap`.
/// Creates the root directory if needed; fails clearly when dovecot is not installed.
pub fn tunnel_command(imap: &Path, layout: &Layout) -> anyhow::Result<String> {
    match std::fs::metadata(imap) {
        Ok(m) if m.is_file() => {}
        _ => anyhow::bail!(
            "maildir_engine = dovecot needs dovecot's imap binary, not found at {} (install it: apt-get install dovecot-imapd; or set dovecot_imap_path; or use maildir_engine = native)",
            imap.display()
        ),
    }
    let loc = mail_location(layout)?;
    let root = &layout.root;
    std::fs::create_dir_all(root)
        .with_context(|| format!("cannot create the Maildir root {}", root.display()))?;
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let mut argv: Vec<String> = Vec::new();
    let uid = if euid == 0 {
        let meta =
            std::fs::metadata(root).with_context(|| format!("cannot read {}", root.display()))?;
        if meta.uid() == 0 {
            anyhow::bail!(
                "maildir_engine = dovecot: dovecot refuses to access mail as root, and the Maildir {} belongs to root; give it to the mail user (chown -R USER: {}) so twinbox runs dovecot as that user, or use maildir_engine = native",
                root.display(),
                root.display()
            );
        }
        argv.extend([
            "setpriv".to_string(),
            format!("--reuid={}", meta.uid()),
            format!("--regid={}", meta.gid()),
            "--clear-groups".to_string(),
        ]);
        meta.uid()
    } else {
        euid
    };
    let user = user_name(uid).unwrap_or_else(|| format!("uid{uid}"));
    argv.extend([
        "env".to_string(),
        "-i".to_string(),
        format!("USER={user}"),
        format!("HOME={}", root.display()),
        imap.display().to_string(),
        "-c".to_string(),
        "/dev/null".to_string(),
        "-o".to_string(),
        format!("mail_location={loc}"),
        "-o".to_string(),
        "stats_writer_socket_path=".to_string(),
        "-o".to_string(),
        "info_log_path=/dev/null".to_string(),
    ]);
    let mut cmd = String::from("exec");
    for a in &argv {
        cmd.push(' ');
        cmd.push_str(&shell_quote(a));
    }
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let l = Layout {
            root: "/m/x".into(),
            sep: '/',
            inbox: Inbox::Folder,
            utf8: true,
        };
        assert_eq!(
            mail_location(&l).expect("location"),
            "maildir:/m/x:LAYOUT=fs:UTF-8:INBOX=/m/x/INBOX"
        );
        let l = Layout {
            root: "/m/x".into(),
            sep: '.',
            inbox: Inbox::Root,
            utf8: false,
        };
        assert_eq!(mail_location(&l).expect("location"), "maildir:/m/x");
        assert!(tunnel_command(Path::new("/nonexistent/imap"), &l)
            .expect_err("missing binary")
            .to_string()
            .contains("dovecot-imapd"));
    }
}
