//! Every kind of error names the file and line (and the section and option).

use super::*;

const FILE: &str = "~/.config/twinbox/config";

#[test]
fn invalid_value_message_has_the_documented_shape() {
    assert_eq!(
        err(&base_with("remoteport = abc")),
        format!("{FILE}:17: [Repository Remote] option 'remoteport': expected a port number (1-65535), got 'abc'")
    );
    assert_eq!(
        err(&base_with("ssl = maybe")),
        format!("{FILE}:17: [Repository Remote] option 'ssl': expected yes or no (also true/false, on/off, 1/0), got 'maybe'")
    );
}

#[test]
fn unknown_option_suggests_the_nearest() {
    assert_eq!(
        err(&base_with("remtehost = x")),
        format!("{FILE}:17: [Repository Remote] option 'remtehost': unknown option; did you mean 'remotehost'?")
    );
    let e = err(&base_with("localfolders = ~/x"));
    assert!(
        e.starts_with(&format!(
            "{FILE}:17: [Repository Remote] option 'localfolders': unknown option"
        )),
        "{e}"
    );
    assert!(e.contains("it is an option of Maildir repositories"), "{e}");
    let e = err(&BASE.replace("accounts = Test", "accounts = Test\nautorefesh = 5"));
    assert!(
        e.starts_with(&format!(
            "{FILE}:3: [general] option 'autorefesh': unknown option"
        )),
        "{e}"
    );
    let e = err(&BASE.replace(
        "remoterepository = Remote",
        "remoterepository = Remote\nquik = 1",
    ));
    assert!(
        e.contains(":7: [Account Test] option 'quik'") && e.contains("did you mean 'quick'?"),
        "{e}"
    );
}

#[test]
fn unknown_section_is_an_error() {
    let e = err(&format!("{BASE}\n[Acount Other]\nx = 1\n"));
    assert!(
        e.starts_with(&format!(
            "{FILE}:18: [Acount Other]: unknown kind of section"
        )),
        "{e}"
    );
    assert!(e.contains("did you mean '[Account Other]'?"), "{e}");
    let e = err(&format!("{BASE}[General]\n"));
    assert!(
        e.starts_with(&format!("{FILE}:17: [General]:")) && e.contains("'[general]'"),
        "{e}"
    );
    let e = err(&format!("{BASE}[ui.Curses.Blinkenlights]\n"));
    assert!(
        e.contains(":17: [ui.Curses.Blinkenlights]: not supported in twinbox"),
        "{e}"
    );
}

#[test]
fn duplicates_name_both_lines() {
    assert_eq!(
        err(&base_with("remotehost = other")),
        format!("{FILE}:17: [Repository Remote] option 'remotehost': given twice in this section, at lines 14 and 17")
    );
    let e = err(&format!("{BASE}[Repository Local]\ntype = Maildir\n"));
    assert_eq!(
        e,
        format!("{FILE}:17: [Repository Local]: section given twice, at lines 8 and 17")
    );
    let e = err(&format!("{BASE}[Repository  Local ]\ntype = Maildir\n"));
    assert!(
        e.contains(":17: [Repository  Local]: section given twice, at lines 8 and 17"),
        "{e}"
    );
    // Option names are case-insensitive, so these are duplicates too.
    let e = err(&base_with("RemoteHost = other"));
    assert!(e.contains("at lines 14 and 17"), "{e}");
}

#[test]
fn syntax_errors() {
    let e = err("remotehost = x\n");
    assert!(
        e.starts_with(&format!("{FILE}:1: option outside any section")),
        "{e}"
    );
    let e = err("[general]\njust some words\n");
    assert!(
        e.starts_with(&format!("{FILE}:2: [general]: expected 'option = value'")),
        "{e}"
    );
    let e = err("[general\n");
    assert!(
        e.starts_with(&format!("{FILE}:1: a section header must be '[NAME]'")),
        "{e}"
    );
    let e = err("[general]\n= x\n");
    assert!(
        e.starts_with(&format!("{FILE}:2: [general]: an option name is missing")),
        "{e}"
    );
}

#[test]
fn missing_options_point_at_the_section() {
    let e = err(&BASE.replace("localrepository = Local\n", ""));
    assert!(
        e.starts_with(&format!(
            "{FILE}:4: [Account Test] option 'localrepository': missing; "
        )),
        "{e}"
    );
    let e = err(&BASE.replace("type = Maildir\n", ""));
    assert!(
        e.starts_with(&format!(
            "{FILE}:8: [Repository Local] option 'type': missing"
        )),
        "{e}"
    );
    let e = err(&BASE.replace("localfolders = ~/Mail\n", ""));
    assert!(
        e.starts_with(&format!(
            "{FILE}:8: [Repository Local] option 'localfolders': missing"
        )),
        "{e}"
    );
    let e = err(&BASE.replace("remotehost = imap.example.org\n", ""));
    assert!(
        e.starts_with(&format!(
            "{FILE}:12: [Repository Remote] option 'remotehost': missing"
        )),
        "{e}"
    );
    let e = err("[general]\nmetadata = /tmp/x\n");
    assert!(
        e.starts_with(&format!("{FILE}: missing; no account to sync")),
        "{e}"
    );
}

#[test]
fn unsupported_python_options_say_so() {
    let e = err(&BASE.replace(
        "accounts = Test",
        "accounts = Test\npythonfile = ~/.offlineimap.py",
    ));
    assert!(
        e.starts_with(&format!(
            "{FILE}:3: [general] option 'pythonfile': not supported in twinbox: Python"
        )),
        "{e}"
    );
    let e = err(&base_with("remotepasseval = get_password('x')"));
    assert!(
        e.contains(":17: [Repository Remote] option 'remotepasseval': not supported in twinbox"),
        "{e}"
    );
    assert!(e.contains("remotepasscmd"), "{e}");
    let e = err(&base_with("remoteusereval = get_user('x')"));
    assert!(
        e.contains("remoteuser") && e.contains("remotepasscmd"),
        "{e}"
    );
    let e = err(&base_with(
        "nametrans = lambda f: re.sub('^INBOX\\.', '', f)",
    ));
    assert!(
        e.contains(":17: [Repository Remote] option 'nametrans': not supported in twinbox: Python"),
        "{e}"
    );
    assert!(e.contains("s/^INBOX\\.//"), "{e}");
    let e = err(&base_with("folderfilter = lambda f: f in ['INBOX']"));
    assert!(
        e.contains("option 'folderfilter': not supported") && e.contains("re:"),
        "{e}"
    );
    let e = err(&BASE.replace("type = Maildir", "type = GmailMaildir"));
    assert!(
        e.contains(":9: [Repository Local] option 'type': not supported"),
        "{e}"
    );
    let e = err(&BASE.replace(
        "remoterepository = Remote",
        "remoterepository = Remote\nsynclabels = yes",
    ));
    assert!(
        e.contains(":7: [Account Test] option 'synclabels': not supported"),
        "{e}"
    );
    parse(&BASE.replace(
        "remoterepository = Remote",
        "remoterepository = Remote\nsynclabels = no",
    ))
    .unwrap();
    let e = err(&base_with("auth_mechanisms = XOAUTH2, PLAIN"));
    assert!(e.contains(":17:") && e.contains("XOAUTH2 mechanism"), "{e}");
    let e = err(&base_with("ssl_version = tls1_1"));
    assert!(e.contains(":17:") && e.contains("before 1.2"), "{e}");
    let e = err(&base_with(
        "cert_fingerprint = bbfe29cf97acb204591edbafe0aa8c8f914287c9",
    ));
    assert!(e.contains(":17:") && e.contains("SHA-256"), "{e}");
}

#[test]
fn interpolation_errors() {
    let e = err(&base_with("reference = %(nothing)s"));
    assert!(
        e.starts_with(&format!(
            "{FILE}:17: [Repository Remote] option 'reference': '%(nothing)s' refers"
        )),
        "{e}"
    );
    let e = err(&base_with("reference = 100%"));
    assert!(e.contains(":17:") && e.contains("'%%'"), "{e}");
    let e = err(&base_with("reference = %(reference)s"));
    assert!(e.contains(":17:") && e.contains("a loop"), "{e}");
}

#[test]
fn conflicts_and_references() {
    let e = err(&base_with("ssl = yes\nstarttls = yes"));
    assert!(
        e.starts_with(&format!(
            "{FILE}:18: [Repository Remote] option 'starttls': ssl = yes and starttls = yes"
        )),
        "{e}"
    );
    let e = err(&base_with("remotepasscmd = pass show x"));
    assert!(
        e.contains(":17:") && e.contains("remotepass and remotepasscmd"),
        "{e}"
    );
    let e = err(&base_with(
        "preauthtunnel = ssh host imapd\ntransporttunnel = nc host 143",
    ));
    assert!(e.contains("preauthtunnel and transporttunnel"), "{e}");
    let e = err(&BASE.replace("localrepository = Local", "localrepository = Locl"));
    assert_eq!(
        e,
        format!("{FILE}:5: [Account Test] option 'localrepository': there is no [Repository Locl] section; did you mean 'Local'?")
    );
    let e = err(&BASE.replace("accounts = Test", "accounts = Tset"));
    assert!(
        e.starts_with(&format!(
            "{FILE}:2: [general] option 'accounts': account 'Tset'"
        )),
        "{e}"
    );
    assert!(e.contains("did you mean 'Test'?"), "{e}");
    let e = err(&BASE.replace("remoterepository = Remote", "remoterepository = Local"));
    assert!(e.contains(":6:") && e.contains("must differ"), "{e}");
    let swapped = BASE
        .replace("localrepository = Local", "localrepository = X")
        .replace("remoterepository = Remote", "remoterepository = Local")
        .replace("localrepository = X", "localrepository = Remote");
    let e = err(&swapped);
    assert!(
        e.contains(":6:") && e.contains("must be of type IMAP"),
        "{e}"
    );
}

#[test]
fn errors_from_default_section_point_there() {
    let text = format!("[DEFAULT]\nssl = perhaps\n\n{BASE}");
    let e = err(&text);
    assert!(
        e.starts_with(&format!(
            "{FILE}:2: [DEFAULT] option 'ssl': expected yes or no"
        )),
        "{e}"
    );
}
