//! Finding the configuration file.

use std::path::PathBuf;

use super::*;

#[test]
fn config_file_lookup_order() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path().to_str().unwrap().to_string();
    let env = Env::with_vars([("HOME", h.as_str())]);
    assert_eq!(
        config_path_candidates(&env),
        [
            home.path().join(".config/twinbox/config"),
            home.path().join(".twinboxrc")
        ]
    );
    let e = default_config_path(None, &env).unwrap_err().to_string();
    assert_eq!(
        e,
        "twinbox: no configuration file: tried ~/.config/twinbox/config and ~/.twinboxrc (use -c FILE to name one)"
    );
    std::fs::write(home.path().join(".twinboxrc"), BASE).unwrap();
    assert_eq!(
        default_config_path(None, &env).unwrap(),
        home.path().join(".twinboxrc")
    );
    std::fs::create_dir_all(home.path().join(".config/twinbox")).unwrap();
    std::fs::write(home.path().join(".config/twinbox/config"), BASE).unwrap();
    assert_eq!(
        default_config_path(None, &env).unwrap(),
        home.path().join(".config/twinbox/config")
    );

    let xdg = Env::with_vars([("HOME", h.as_str()), ("XDG_CONFIG_HOME", "/elsewhere")]);
    assert_eq!(
        config_path_candidates(&xdg)[0],
        PathBuf::from("/elsewhere/twinbox/config")
    );
    assert_eq!(
        default_config_path(None, &xdg).unwrap(),
        home.path().join(".twinboxrc")
    );
    let explicit = PathBuf::from("/some/file");
    assert_eq!(
        default_config_path(Some(&explicit), &xdg).unwrap(),
        explicit
    );
}

#[test]
fn reading_a_file_names_it_with_a_tilde() {
    let home = tempfile::tempdir().unwrap();
    let env = Env::with_vars([("HOME", home.path().to_str().unwrap())]);
    let path = home.path().join(".twinboxrc");
    let e = RawConfig::read(&path, &env).unwrap_err().to_string();
    assert!(
        e.starts_with("~/.twinboxrc: cannot read the configuration: "),
        "{e}"
    );
    std::fs::write(&path, base_with("remoteport = abc")).unwrap();
    let raw = RawConfig::read(&path, &env).unwrap();
    let e = Config::from_raw(&raw, &env).unwrap_err().to_string();
    assert!(
        e.starts_with("~/.twinboxrc:17: [Repository Remote] option 'remoteport'"),
        "{e}"
    );
}
