//! Security checks through the real binary:
//! - the password never appears in output of any kind (`-d ALL`, machineui, `--info`,
//!   `check`, a log file, error messages of a failed login or a cut connection) nor in any
//!   file under the metadata directory; the state database and lock files are 0600 and
//!   the metadata directory 0700;
//! - a password command runs without a shell (unless it needs one), its stderr reaches
//!   the user and its stdout is never shown;
//! - TLS: an expired certificate is refused before login; a pin mismatch names both
//!   fingerprints; STARTTLS stripped from CAPABILITY by a man in the middle is refused when
//!   STARTTLS is required, and no password crosses.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::proxy::{Mode, Proxy};
use crate::support::sync::{start_dovecot, twinbox_bin, wait_with_timeout, RUN_TIMEOUT};
use twinbox::testbed::{sample_messages, Dovecot, DovecotOptions, TestPki, TestUser};

/// A password no other text contains.
const PW: &str = "Pw-9d3f-TOPSECRET-q7";

struct Bed {
    dv: std::sync::Arc<Dovecot>,
    dir: tempfile::TempDir,
}

/// (exit code, stdout, stderr)
type Out = (Option<i32>, String, String);

impl Bed {
    fn new(opts: DovecotOptions) -> Bed {
        let opts = opts.users(vec![
            TestUser::new("alice", PW),
            TestUser::new("bob", "secret"),
        ]);
        let dv = start_dovecot(opts);
        Bed {
            dv,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn meta(&self) -> std::path::PathBuf {
        self.dir.path().join("meta")
    }

    /// Writes the configuration with these remote repository lines.
    fn config(&self, remote: &str) -> std::path::PathBuf {
        let path = self.dir.path().join("twinbox.conf");
        let text = format!(
            "[general]\naccounts = Test\nmetadata = {}\nsocktimeout = 10\n\n[Account Test]\n\
             localrepository = Local\nremoterepository = Remote\n\n[Repository Remote]\n\
             type = IMAP\nremotehost = 127.0.0.1\nremoteuser = alice\n{remote}\n\n\
             [Repository Local]\ntype = IMAP\nremotehost = 127.0.0.1\nremoteport = {}\n\
             ssl = no\nstarttls = no\nremoteuser = bob\nremotepass = secret\n",
            self.meta().display(),
            self.dv.imap_port()
        );
        std::fs::write(&path, text).expect("write config");
        path
    }

    fn plain_remote(&self, pass_line: &str) -> String {
        format!(
            "remoteport = {}\nssl = no\nstarttls = no\n{pass_line}",
            self.dv.imap_port()
        )
    }

    fn run(&self, conf: &Path, args: &[&str]) -> Out {
        let child = std::process::Command::new(twinbox_bin())
            .arg("-c")
            .arg(conf)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn twinbox");
        let o = wait_with_timeout(child, RUN_TIMEOUT).expect("twinbox run");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    fn logins(&self) -> usize {
        self.dv
            .log_contents()
            .matches("Login: user=<alice>")
            .count()
    }
}

/// The password as AUTHENTICATE PLAIN carries it (base64 of `\0alice\0PASSWORD`).
fn sasl_plain(secret: &str) -> String {
    openssl::base64::encode_block(format!("\0alice\0{secret}").as_bytes())
}

fn assert_no_secret(what: &str, out: &Out, secret: &str) {
    for s in [secret.to_string(), sasl_plain(secret)] {
        assert!(
            !out.1.contains(&s) && !out.2.contains(&s),
            "{what}: the password appears in the output:\n{}\n{}",
            out.1,
            out.2
        );
    }
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                v.extend(files(&p));
            } else {
                v.push(p);
            }
        }
    }
    v
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Runs every kind of output with both password sources and a wrong password.
#[test]
fn credentials_never_appear_in_output_logs_or_state() {
    let bed = Bed::new(DovecotOptions::default().tls(false));
    bed.dv
        .seed_mailbox("alice", "INBOX", &sample_messages(301, 3), &[])
        .expect("seed");
    let script = bed.dir.path().join("pw.sh");
    std::fs::write(&script, format!("#!/bin/sh\necho '{PW}'\n")).expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let logfile = bed.dir.path().join("twinbox.log");
    let log_s = logfile.display().to_string();
    let sources = [
        format!("remotepass = {PW}"),
        format!("remotepasscmd = {}", script.display()),
    ];
    for src in &sources {
        let conf = bed.config(&bed.plain_remote(src));
        for args in [
            vec!["-d", "ALL", "-l", &log_s],
            vec!["-u", "machineui", "-d", "ALL"],
            vec!["--info"],
            vec!["check"],
            vec!["-u", "basic"],
        ] {
            let out = bed.run(&conf, &args);
            assert_eq!(out.0, Some(0), "{src} {args:?}:\n{}\n{}", out.1, out.2);
            assert_no_secret(&format!("{src} {args:?}"), &out, PW);
            if args.contains(&"machineui") {
                // The debug output did cover the login.
                assert!(
                    out.2.contains("<redacted>") || out.1.contains("<redacted>"),
                    "-d ALL showed no (redacted) login:\n{}",
                    out.2
                );
            }
        }
    }
    // A wrong password: the error names the failure, not the password tried.
    let wrong = "WrongPw-5e1-NOTSHOWN";
    let conf = bed.config(&bed.plain_remote(&format!("remotepass = {wrong}")));
    let out = bed.run(&conf, &["-d", "ALL"]);
    assert_ne!(out.0, Some(0), "a wrong password logged in");
    assert_no_secret("wrong password", &out, wrong);
    // A connection cut during login: errors name the failure only.
    let proxy = Proxy::start(bed.dv.imap_port());
    proxy.set(Mode::Drop {
        dir: crate::support::proxy::Dir::ToServer,
        at: 20,
    });
    let conf = bed.config(&format!(
        "remoteport = {}\nssl = no\nstarttls = no\nremotepass = {PW}",
        proxy.port()
    ));
    let out = bed.run(&conf, &["-d", "ALL"]);
    assert_ne!(out.0, Some(0), "a cut login succeeded");
    assert_no_secret("cut login", &out, PW);
    let log = std::fs::read(&logfile).expect("the log file");
    assert!(!log.is_empty(), "-l wrote nothing");
    assert!(
        !contains(&log, PW.as_bytes()),
        "the password is in the log file"
    );
    assert!(
        !contains(&log, sasl_plain(PW).as_bytes()),
        "SASL PLAIN in the log file"
    );
    assert!(
        contains(&log, b"<redacted>"),
        "the log file shows no (redacted) login"
    );
    for f in files(&bed.meta()) {
        let data = std::fs::read(&f).expect("read metadata file");
        assert!(
            !contains(&data, PW.as_bytes()),
            "the password is in {}",
            f.display()
        );
    }
}

#[test]
fn metadata_directory_0700_and_state_and_lock_files_0600() {
    let bed = Bed::new(DovecotOptions::default().tls(false));
    bed.dv
        .seed_mailbox("alice", "INBOX", &sample_messages(302, 2), &[])
        .expect("seed");
    let conf = bed.config(&bed.plain_remote(&format!("remotepass = {PW}")));
    // SAFETY: umask(2) only changes this process's file creation mask; a permissive mask
    // proves twinbox sets the modes itself rather than inheriting a strict one.
    unsafe { libc::umask(0o022) };
    let out = bed.run(&conf, &[]);
    assert_eq!(out.0, Some(0), "{}\n{}", out.1, out.2);
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&bed.meta()), 0o700, "metadata directory");
    let all = files(&bed.meta());
    assert!(
        all.iter().any(|f| f.extension().is_some_and(|e| e == "db")),
        "no state database in {all:?}"
    );
    for f in &all {
        assert_eq!(mode(f) & 0o077, 0, "{} is {:o}", f.display(), mode(f));
    }
}

#[test]
fn password_command_runs_without_a_shell_stderr_shown_stdout_hidden() {
    let bed = Bed::new(DovecotOptions::default().tls(false));
    let parent = bed.dir.path().join("parent");
    let script = bed.dir.path().join("pw.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncat /proc/$PPID/comm > '{}'\necho 'pwcmd says hello on stderr' >&2\necho '{PW}'\necho 'second line never shown'\n",
            parent.display()
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let conf =
        bed.config(&bed.plain_remote(&format!("remotepasscmd = {} 'a b'", script.display())));
    let out = bed.run(&conf, &["-d", "ALL"]);
    assert_eq!(out.0, Some(0), "{}\n{}", out.1, out.2);
    let comm = std::fs::read_to_string(&parent).expect("the script ran");
    assert_eq!(
        comm.trim(),
        "twinbox",
        "the password command ran under {comm}"
    );
    assert!(
        out.2.contains("pwcmd says hello on stderr"),
        "stderr hidden:\n{}",
        out.2
    );
    assert_no_secret("password command", &out, PW);
    assert_no_secret("password command", &out, "second line never shown");
    // A command the user wrote with shell syntax gets a shell, and still works.
    let conf =
        bed.config(&bed.plain_remote(&format!("remotepasscmd = {} | head -n 1", script.display())));
    let out = bed.run(&conf, &[]);
    assert_eq!(out.0, Some(0), "{}\n{}", out.1, out.2);
    let comm = std::fs::read_to_string(&parent).expect("the script ran");
    assert_ne!(comm.trim(), "twinbox", "a pipeline ran without a shell?");
}

/// A self-signed certificate for 127.0.0.1 that expired yesterday.
fn expired_cert(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::extension::SubjectAlternativeName;
    use openssl::x509::{X509NameBuilder, X509};
    let key = PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("key");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", "127.0.0.1").expect("cn");
    let name = name.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("version");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(&name).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    b.set_not_before(&Asn1Time::from_unix(now - 30 * 86400).expect("time"))
        .expect("not before");
    b.set_not_after(&Asn1Time::from_unix(now - 86400).expect("time"))
        .expect("not after");
    let san = SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .build(&b.x509v3_context(None, None))
        .expect("san");
    b.append_extension(san).expect("ext");
    b.sign(&key, MessageDigest::sha256()).expect("sign");
    let cert = b.build();
    let (c, k) = (dir.join("expired.pem"), dir.join("expired.key"));
    std::fs::write(&c, cert.to_pem().expect("pem")).expect("write");
    std::fs::write(&k, key.private_key_to_pem_pkcs8().expect("pem")).expect("write");
    (c, k)
}

#[test]
fn expired_certificate_refused_before_login() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (cert, key) = expired_cert(tmp.path());
    let bed = Bed::new(DovecotOptions::default().extra_config(format!(
        "ssl_cert = <{}\nssl_key = <{}\n",
        cert.display(),
        key.display()
    )));
    let port = bed.dv.imaps_port().expect("imaps");
    // Trusted as its own CA: only the dates are wrong.
    let conf = bed.config(&format!(
        "remoteport = {port}\nssl = yes\nsslcacertfile = {}\nremotepass = {PW}",
        cert.display()
    ));
    let out = bed.run(&conf, &[]);
    assert_ne!(out.0, Some(0), "an expired certificate was accepted");
    assert!(
        out.2.contains("expired"),
        "the error does not say expired:\n{}",
        out.2
    );
    assert_eq!(bed.logins(), 0, "logged in over an expired certificate");
}

#[test]
fn pin_mismatch_names_both_fingerprints_and_sends_nothing() {
    let bed = Bed::new(DovecotOptions::default());
    let port = bed.dv.imaps_port().expect("imaps");
    let other = TestPki::self_signed().expect("pki");
    let want = other.cert_fingerprint_sha256().expect("fp");
    let have = bed.dv.cert_fingerprint_sha256().expect("fp");
    let conf = bed.config(&format!(
        "remoteport = {port}\nssl = yes\ncert_fingerprint = {want}\nremotepass = {PW}"
    ));
    let out = bed.run(&conf, &[]);
    assert_ne!(out.0, Some(0), "a wrong pin was accepted");
    let hexonly = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_hexdigit())
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let err = hexonly(&out.2);
    assert!(
        err.contains(&hexonly(&want)),
        "expected pin not shown:\n{}",
        out.2
    );
    assert!(
        err.contains(&hexonly(&have)),
        "presented fingerprint not shown:\n{}",
        out.2
    );
    assert_eq!(bed.logins(), 0);
}

#[test]
fn starttls_stripped_by_a_man_in_the_middle_is_refused() {
    let bed = Bed::new(DovecotOptions::default());
    let proxy = Proxy::start(bed.dv.imap_port());
    proxy.set(Mode::StripStartTls);
    let ca = bed.dv.ca_cert_path().expect("CA").display().to_string();
    let conf = bed.config(&format!(
        "remoteport = {}\nssl = no\nstarttls = yes\nsslcacertfile = {ca}\nremotepass = {PW}",
        proxy.port()
    ));
    proxy.record();
    let out = bed.run(&conf, &[]);
    let (up, _) = proxy.recorded();
    assert!(proxy.tripped(), "the proxy saw no STARTTLS to strip");
    assert_ne!(out.0, Some(0), "went on without STARTTLS");
    assert!(out.2.contains("STARTTLS"), "{}", out.2);
    assert!(
        !contains(&up, PW.as_bytes()),
        "the password crossed in clear"
    );
    assert_eq!(bed.logins(), 0);
    // Without the man in the middle the same configuration works.
    proxy.set(Mode::Pass);
    let out = bed.run(&conf, &[]);
    assert_eq!(out.0, Some(0), "{}\n{}", out.1, out.2);
}
