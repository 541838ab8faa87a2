//! Every command-line flag through the real binary, configuration errors, `-k` overrides,
//! the nametrans round-trip refusal and the password sources.

use twinbox::testbed::sample_messages;

use crate::cli_util::{expect_code, text, twinbox_cmd, Bed};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn seeded() -> Bed {
    let bed = Bed::new();
    bed.dv
        .seed_mailbox("alice", "INBOX", &sample_messages(31, 3), &[])
        .expect("seed");
    bed.dv
        .seed_mailbox("alice", "Lists/rust", &sample_messages(32, 2), &[])
        .expect("seed");
    bed
}

#[test]
fn version_and_help() {
    let home = tempfile::tempdir().expect("tempdir");
    let o = twinbox_cmd(home.path())
        .arg("--version")
        .output()
        .expect("run");
    expect_code(&o, 0);
    assert_eq!(
        stdout(&o).trim(),
        format!("twinbox {}", env!("CARGO_PKG_VERSION"))
    );
    let o = twinbox_cmd(home.path()).arg("-h").output().expect("run");
    expect_code(&o, 0);
    let help = stdout(&o);
    for flag in [
        "-c",
        "-a",
        "-f",
        "-o",
        "-q",
        "-1",
        "-k",
        "--dry-run",
        "--info",
        "check",
        "rename",
        "delete",
        "import-config",
    ] {
        assert!(help.contains(flag), "help lacks {flag}\n{help}");
    }
    // No configuration anywhere: exit 2 naming the places tried.
    let o = twinbox_cmd(home.path()).output().expect("run");
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains(".config/twinbox/config") && stderr(&o).contains(".twinboxrc"),
        "{}",
        text(&o)
    );
}

#[test]
fn default_config_path_is_used_without_c() {
    let bed = seeded();
    bed.write_conf("", "", "");
    let dir = bed.home.path().join(".config/twinbox");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::copy(bed.conf(), dir.join("config")).expect("copy");
    let o = bed.cmd().arg("-o").output().expect("run");
    expect_code(&o, 0);
    assert_eq!(bed.snapshot("bob", "INBOX"), bed.snapshot("alice", "INBOX"));
}

#[test]
fn config_errors_name_file_line_section_and_option() {
    let bed = Bed::new();
    bed.write_conf("autorefrsh = 5", "", "");
    let o = bed.run(&[]);
    expect_code(&o, 2);
    let e = stderr(&o);
    assert!(e.contains("twinbox.conf:8:"), "file and line\n{}", text(&o));
    assert!(e.contains("[Account T]"), "section\n{}", text(&o));
    assert!(e.contains("autorefrsh"), "option\n{}", text(&o));
    assert!(
        e.contains("did you mean 'autorefresh'"),
        "hint\n{}",
        text(&o)
    );

    bed.write_conf("", "", "maxconnections = lots");
    let o = bed.run(&[]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("[Repository Remote] option 'maxconnections'")
            && stderr(&o).contains("lots"),
        "{}",
        text(&o)
    );
}

#[test]
fn accounts_folders_quick_single_once_flags() {
    let bed = seeded();
    bed.write_conf("", "", "");
    // -a with an unknown account.
    let o = bed.run(&["-a", "Nope"]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("Nope"), "{}", text(&o));
    // -f: only that folder.
    let o = bed.run(&["-a", "T", "-f", "Lists/rust"]);
    expect_code(&o, 0);
    assert_eq!(
        bed.snapshot("bob", "Lists/rust"),
        bed.snapshot("alice", "Lists/rust")
    );
    assert!(bed.snapshot("bob", "INBOX").is_empty(), "{}", text(&o));
    // -q -1 -o: a quick single-connection one-shot sync of everything.
    let o = bed.run(&["-q", "-1", "-o"]);
    expect_code(&o, 0);
    assert_eq!(bed.snapshot("bob", "INBOX"), bed.snapshot("alice", "INBOX"));
    // A quick sync still brings new messages.
    bed.dv
        .append("alice", "INBOX", &sample_messages(33, 1)[0], &[])
        .expect("append");
    let o = bed.run(&["-q"]);
    expect_code(&o, 0);
    assert_eq!(bed.snapshot("bob", "INBOX"), bed.snapshot("alice", "INBOX"));
}

#[test]
fn k_overrides_with_underscores_for_spaces() {
    let bed = seeded();
    // The file points at a wrong port and a wrong password; -k fixes both.
    bed.write_raw(&format!(
        "[general]\nmetadata = {}\n\n[Account My Mail]\nlocalrepository = Local\nremoterepository = Remote\n\n{}{}",
        bed.meta().display(),
        bed.repo("Local", "bob", ""),
        bed.repo("Remote", "alice", "")
            .replace(&format!("remoteport = {}", bed.dv.imap_port()), "remoteport = 1")
            .replace("remotepass = secret", "remotepass = wrong"),
    ));
    let o = bed.run(&[]);
    expect_code(&o, 2);
    let port = format!("Repository_Remote:remoteport={}", bed.dv.imap_port());
    let o = bed.run(&["-k", &port, "-k", "Repository_Remote:remotepass=secret"]);
    expect_code(&o, 0);
    assert_eq!(bed.snapshot("bob", "INBOX"), bed.snapshot("alice", "INBOX"));
    // An override of a section with spaces, and of [general] without a section.
    let o = bed.run(&[
        "-k",
        &port,
        "-k",
        "Repository_Remote:remotepass=secret",
        "-k",
        "Account_My_Mail:maxsize=notasize",
    ]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("-k") && stderr(&o).contains("maxsize"),
        "{}",
        text(&o)
    );
    let o = bed.run(&["-k", "maxsyncaccounts=zero"]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("maxsyncaccounts"), "{}", text(&o));
    let o = bed.run(&["-k", "Repository_Remot:remotepass=x"]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("did you mean 'Repository_Remote'"),
        "{}",
        text(&o)
    );
}

#[test]
fn nametrans_that_does_not_round_trip_is_refused_naming_the_folder() {
    let bed = seeded();
    bed.dv
        .seed_mailbox("alice", "Work", &sample_messages(34, 1), &[])
        .expect("seed");
    // Remote Work -> local Job, but local Job -> remote Office: a creation loop.
    bed.write_conf(
        "",
        "nametrans = s/^Job$/Office/",
        "nametrans = s/^Work$/Job/",
    );
    let o = bed.run(&[]);
    expect_code(&o, 2);
    let e = stderr(&o);
    assert!(e.contains("Work") || e.contains("Job"), "{}", text(&o));
    for user in ["alice", "bob"] {
        let boxes = bed.dv.mailboxes(user).expect("mailboxes");
        assert!(
            !boxes.iter().any(|m| m == "Office" || m == "Job"),
            "{user}: {boxes:?}"
        );
    }
}

#[test]
fn password_sources_command_file_and_netrc() {
    let bed = seeded();
    let passfile = bed.home.path().join("alice.pass");
    std::fs::write(&passfile, "secret\nignored second line\n").expect("pass");
    let with_pass = |pass_line: &str| {
        bed.repo("Remote", "alice", "")
            .replace("remotepass = secret", pass_line)
    };
    let write = |remote: String| {
        bed.write_raw(&format!(
            "[general]\nmetadata = {}\n\n[Account T]\nlocalrepository = Local\nremoterepository = Remote\n\n{}{}",
            bed.meta().display(),
            bed.repo("Local", "bob", ""),
            remote
        ))
    };
    write(with_pass("remotepasscmd = printf 'secret\\nmore'"));
    let o = bed.run(&[]);
    expect_code(&o, 0);
    assert!(!text(&o).contains("secret"), "never echoed\n{}", text(&o));

    write(with_pass(&format!(
        "remotepassfile = {}",
        passfile.display()
    )));
    expect_code(&bed.run(&[]), 0);

    // ~/.netrc (HOME is the temp home), user and password both from it.
    let netrc = bed.home.path().join(".netrc");
    std::fs::write(
        &netrc,
        "machine 127.0.0.1\n  login alice\n  password secret\n",
    )
    .expect("netrc");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&netrc, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    write(with_pass("").replace("remoteuser = alice\n", ""));
    bed.dv
        .append("alice", "INBOX", &sample_messages(35, 1)[0], &[])
        .expect("append");
    let o = bed.run(&[]);
    expect_code(&o, 0);
    assert_eq!(bed.snapshot("bob", "INBOX"), bed.snapshot("alice", "INBOX"));

    // A failing command is a clear error naming the option.
    write(with_pass("remotepasscmd = false"));
    let o = bed.run(&[]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("remotepasscmd"), "{}", text(&o));
}
