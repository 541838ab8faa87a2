//! `twinbox import-config ~/.offlineimaprc`: translates an offlineimap configuration into
//! twinbox's. Sections and options twinbox shares with offlineimap are kept as written
//! (interpolations included); `folderfilter` and `nametrans` lambdas in the common forms
//! become twinbox rules ([`super::import_lambda`]); what cannot be translated (Python
//! evaluation, pythonfile functions, options twinbox lacks) is kept as a comment in place
//! and listed on standard error. The result is validated as a twinbox configuration.

use std::io::Write;
use std::path::Path;

use argh::FromArgs;

use super::import_lambda;
use crate::config::{option_support, Config, Env, RawConfig, RawEntry, Support};

/// Translate an offlineimap configuration into a twinbox one.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "import-config")]
pub struct ImportArgs {
    /// the offlineimap configuration (e.g. ~/.offlineimaprc)
    #[argh(positional)]
    pub file: String,
    /// write the result here (mode 0600) instead of standard output
    #[argh(option, short = 'o')]
    pub output: Option<String>,
}

/// The translation of a whole file.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The twinbox configuration text.
    pub text: String,
    /// What could not be translated, one line each (`[section] option: why`).
    pub untranslated: Vec<String>,
    /// Why the result does not validate as a twinbox configuration, if it does not.
    pub invalid: Option<String>,
}

/// Runs the command: 0 when everything was translated and validates, 1 when something
/// could not be translated or the result does not validate, 2 when the file cannot be read.
pub fn run(a: ImportArgs) -> i32 {
    let env = Env::from_process();
    let path = match env.expand_path(&a.file) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("twinbox import-config: {}: {e}", a.file);
            return 2;
        }
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("twinbox import-config: cannot read {}: {e}", path.display());
            return 2;
        }
    };
    let imported = match translate(&text, &path.display().to_string(), &env) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("twinbox import-config: {e}");
            return 2;
        }
    };
    if let Some(out) = &a.output {
        if let Err(e) = write_private(Path::new(out), imported.text.as_bytes()) {
            eprintln!("twinbox import-config: cannot write {out}: {e}");
            return 2;
        }
    } else {
        print!("{}", imported.text);
    }
    for u in &imported.untranslated {
        eprintln!("twinbox import-config: not translated: {u}");
    }
    if let Some(e) = &imported.invalid {
        eprintln!("twinbox import-config: the result needs editing before use: {e}");
    }
    if imported.untranslated.is_empty() && imported.invalid.is_none() {
        0
    } else {
        1
    }
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// Formats `key = value`, continuation lines indented.
fn option_line(key: &str, value: &str) -> String {
    let mut lines = value.split('\n');
    let mut out = format!("{key} = {}\n", lines.next().unwrap_or(""));
    for l in lines {
        out.push_str(&format!("    {}\n", l.trim_start()));
    }
    out
}

/// An option kept as a comment, with the reason.
fn commented(key: &str, value: &str, why: &str) -> String {
    let mut out = format!("# twinbox: not translated ({why}):\n");
    for l in option_line(key, value).lines() {
        out.push_str(&format!("#   {l}\n"));
    }
    out
}

/// Doubles `%` so that interpolation leaves generated text alone.
fn no_interp(s: &str) -> String {
    s.replace('%', "%%")
}

/// Translates offlineimap configuration text; `source` names it in messages.
pub fn translate(text: &str, source: &str, env: &Env) -> Result<Imported, String> {
    let raw = RawConfig::parse(text, source).map_err(|e| e.to_string())?;
    let mut out = format!(
        "# twinbox configuration translated from {source} by `twinbox import-config`.\n# See conf/twinbox.conf for every option.\n"
    );
    let mut untranslated = Vec::new();
    for section in &raw.sections {
        let name = section.name.as_str();
        let lower = name.to_ascii_lowercase();
        let kind_ok = matches!(name, "general" | "mbnames" | "DEFAULT")
            || name.starts_with("Account ")
            || name.starts_with("Repository ");
        if !kind_ok {
            let why = if lower.starts_with("ui.") {
                "offlineimap's UI settings; choose the interface with [general] ui"
            } else {
                "not a section twinbox knows"
            };
            untranslated.push(format!("[{name}]: the whole section ({why})"));
            out.push_str(&format!("\n# twinbox: section [{name}] left out ({why})\n"));
            continue;
        }
        out.push_str(&format!("\n[{name}]\n"));
        let repo_type = section
            .entry("type")
            .map(|e| e.value.trim().to_ascii_lowercase());
        for entry in &section.entries {
            let (line, note) = translate_entry(name, repo_type.as_deref(), entry);
            out.push_str(&line);
            if let Some(n) = note {
                untranslated.push(format!(
                    "[{name}] {} (line {}): {n}",
                    entry.key,
                    entry.origin.line().unwrap_or(0)
                ));
            }
        }
    }
    let invalid = Config::parse_str(&out, "the translated configuration", env)
        .err()
        .map(|e| e.to_string());
    Ok(Imported {
        text: out,
        untranslated,
        invalid,
    })
}

/// The output for one option and, if it could not be translated, why.
fn translate_entry(
    section: &str,
    repo_type: Option<&str>,
    e: &RawEntry,
) -> (String, Option<String>) {
    let key = e.key.as_str();
    let value = e.value.trim();
    let skip = |why: String| (commented(key, value, &why), Some(why));
    match key {
        "folderfilter" | "nametrans" if value.starts_with("lambda") || !value.is_empty() => {
            let res = if key == "folderfilter" {
                import_lambda::folderfilter(value).map(|v| no_interp(&v))
            } else {
                import_lambda::nametrans(value).map(|rules| {
                    rules
                        .iter()
                        .map(|r| no_interp(r))
                        .collect::<Vec<_>>()
                        .join("\n")
                })
            };
            return match res {
                Ok(v) if v.is_empty() => (
                    format!(
                        "# twinbox: {key} `{}` selects/keeps everything: left out\n",
                        value.replace('\n', " ")
                    ),
                    None,
                ),
                Ok(v) => (
                    format!(
                        "# from: {}\n{}",
                        value.split_whitespace().collect::<Vec<_>>().join(" "),
                        option_line(key, &v)
                    ),
                    None,
                ),
                Err(why) => skip(format!("{why}; write it as twinbox rules")),
            };
        }
        "remotepasseval" => {
            if let Some(cmd) = import_lambda::passeval_command(value) {
                return (
                    format!(
                        "# from: remotepasseval = {}\n{}",
                        value.replace('\n', " "),
                        option_line("remotepasscmd", &no_interp(&cmd))
                    ),
                    None,
                );
            }
        }
        "type" if value.eq_ignore_ascii_case("GmailMaildir") => {
            return (
                format!(
                    "# twinbox: GmailMaildir becomes Maildir (no label sync)\n{}",
                    option_line(key, "Maildir")
                ),
                None,
            );
        }
        "metadata" if section == "general" => {
            return (
                format!(
                    "# twinbox: offlineimap's metadata ({value}) is not twinbox's state; twinbox keeps its own (default ~/.local/share/twinbox)\n"
                ),
                None,
            );
        }
        "sslcacertfile" if value.eq_ignore_ascii_case("OS-DEFAULT") => {
            return (
                "# twinbox: sslcacertfile = OS-DEFAULT left out: the system CAs are the default\n"
                    .to_string(),
                None,
            );
        }
        "status_backend" => {
            return (
                "# twinbox: status_backend left out: twinbox always keeps its state in SQLite\n"
                    .to_string(),
                None,
            );
        }
        _ => {}
    }
    match option_support(section, repo_type, key) {
        Support::Known => (option_line(key, &e.value), None),
        Support::Unsupported(why) => skip(why.to_string()),
        Support::Unknown => skip("not an option twinbox knows".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env::with_vars([("HOME", "/home/t")])
    }

    #[test]
    fn manual_use_case_gmail_to_imap() {
        let src = "[general]\naccounts = G\n\n[Account G]\nlocalrepository = TheOtherImap\nremoterepository = Gmailserver-foo\n\n[Repository Gmailserver-foo]\n#This is the remote repository\ntype = Gmail\nremotepass = XXX\nremoteuser = XXX\nnametrans = lambda x: 'INBOX.' + x\n\n[Repository TheOtherImap]\ntype = IMAP\nremotehost = XXX\nremotepass = XXX\nremoteuser = XXX\n";
        let i = translate(src, "offlineimaprc", &env()).expect("translate");
        assert!(i.untranslated.is_empty(), "{:?}", i.untranslated);
        assert!(i.text.contains("nametrans = s/^/INBOX./\n"), "{}", i.text);
        assert_eq!(i.invalid, None, "{}", i.text);
    }

    #[test]
    fn passeval_running_a_command_becomes_remotepasscmd() {
        let src = "[general]\naccounts = a\n[Account a]\nlocalrepository = l\nremoterepository = r\n[Repository l]\ntype = Maildir\nlocalfolders = ~/Mail\n[Repository r]\ntype = IMAP\nremotehost = h\nremoteuser = u\nremotepasseval = os.popen(\"pass show mail/h\").read().strip()\n";
        let i = translate(src, "rc", &env()).expect("translate");
        assert!(i.untranslated.is_empty(), "{:?}", i.untranslated);
        assert!(
            i.text.contains("remotepasscmd = pass show mail/h\n"),
            "{}",
            i.text
        );
        assert_eq!(i.invalid, None, "{}", i.text);
    }

    #[test]
    fn python_evaluation_is_reported_and_kept_as_comment() {
        let src = "[general]\naccounts = a\npythonfile = ~/bin/helpers.py\nmetadata = ~/.offlineimap\n\n[Account a]\nlocalrepository = l\nremoterepository = r\nstatus_backend = sqlite\n\n[Repository l]\ntype = Maildir\nlocalfolders = ~/Mail/a\n\n[Repository r]\ntype = IMAP\nremotehost = imap.a.com\nremoteusereval = get_username(\"imap.a.net\")\nremotepasseval = get_password(\"imap.a.net\")\nnametrans = oimaptransfolder_acc1\nsslcacertfile = OS-DEFAULT\nfolderfilter = lambda foldername: foldername in [\n             'INBOX', 'Drafts', 'Sent', 'archiv']\n\n[ui.Curses.Blinkenlights]\nstatuschar = .\n";
        let i = translate(src, "rc", &env()).expect("translate");
        let joined = i.untranslated.join("\n");
        for want in [
            "pythonfile",
            "remoteusereval",
            "remotepasseval",
            "nametrans",
            "ui.Curses",
        ] {
            assert!(joined.contains(want), "{want} missing from {joined}");
        }
        assert!(
            i.text.contains("#   remotepasseval = get_password"),
            "{}",
            i.text
        );
        assert!(
            i.text
                .contains("folderfilter = INBOX, Drafts, Sent, archiv\n"),
            "{}",
            i.text
        );
        assert!(!i.text.contains("\nmetadata"), "{}", i.text);
        assert_eq!(i.invalid, None, "{}", i.text);
    }
}
