//! `-k [SECTION:]OPTION=VALUE` overrides.

use std::time::Duration;

use super::*;

fn with_overrides(text: &str, specs: &[&str]) -> Result<Config, ConfigError> {
    let mut raw = RawConfig::parse(text, "~/.config/twinbox/config")?;
    for spec in specs {
        apply_override(&mut raw, spec)?;
    }
    Config::from_raw(&raw, &env())
}

#[test]
fn overrides_replace_and_add_values() {
    let c = with_overrides(
        BASE,
        &[
            "Account_Test:autorefresh=30",
            "Repository_Remote:remotehost = other.example.org",
            "maxsyncaccounts=3",
            "Repository_Remote:RemotePort=1993",
        ],
    )
    .unwrap();
    assert_eq!(c.accounts[0].autorefresh, Some(Duration::from_secs(1800)));
    assert_eq!(
        imap(&c, "Remote").host.as_deref(),
        Some("other.example.org")
    );
    assert_eq!(imap(&c, "Remote").port, 1993);
    assert_eq!(c.general.maxsyncaccounts, 3);
}

#[test]
fn section_names_with_underscores_and_new_singletons() {
    let text = BASE
        .replace("Account Test", "Account my_work")
        .replace("accounts = Test", "accounts = my_work");
    let c = with_overrides(&text, &["Account_my_work:quick=-1", "mbnames:enabled=no"]).unwrap();
    assert_eq!(c.accounts[0].quick, QuickSync::Always);
    // [general] is created when the file has none.
    let no_general = BASE.replace("[general]\naccounts = Test\n", "");
    let c = with_overrides(&no_general, &["fsync=no"]).unwrap();
    assert!(!c.general.fsync);
}

#[test]
fn override_errors_say_dash_k() {
    let e = with_overrides(BASE, &["Account_Test:autorefresh=soon"])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "-k: [Account Test] option 'autorefresh': expected a number of minutes, such as 5 or 0.5, got 'soon'"
    );
    let e = with_overrides(BASE, &["Account_Test:autorefrsh=5"])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "-k: [Account Test] option 'autorefrsh': unknown option; did you mean 'autorefresh'?"
    );
    let e = with_overrides(BASE, &["Account_Tset:autorefresh=5"])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("-k: no section [Account Tset]") && e.contains("'Account_Test'"),
        "{e}"
    );
    let e = with_overrides(BASE, &["autorefresh"])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("-k: expected [SECTION:]OPTION=VALUE"), "{e}");
    let e = with_overrides(BASE, &["pythonfile=x.py"])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("-k: [general] option 'pythonfile': not supported"),
        "{e}"
    );
}
