//! Mailbox names between sides: each side's own spelling (its delimiter) and the
//! separator-neutral name the state uses (`/` between levels).

/// Folder selection and name translation between the sides (`folderfilter`, `nametrans`).
/// Names here are separator-neutral (`/` between levels).
pub trait FolderRules: Send + Sync + std::fmt::Debug {
    /// The local name of a remote folder.
    fn to_local(&self, remote: &str) -> String;
    /// The remote name of a local folder.
    fn to_remote(&self, local: &str) -> String;
    /// Whether the remote side's filter takes this remote folder.
    fn accept_remote(&self, remote: &str) -> bool;
    /// Whether the local side's filter takes this local folder.
    fn accept_local(&self, local: &str) -> bool;
    /// Refuses names that do not translate there and back to themselves.
    fn check(&self, remote: &[String], local: &[String]) -> Result<(), String>;
}

/// No filter, no translation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity;

impl FolderRules for Identity {
    fn to_local(&self, remote: &str) -> String {
        remote.to_string()
    }
    fn to_remote(&self, local: &str) -> String {
        local.to_string()
    }
    fn accept_remote(&self, _: &str) -> bool {
        true
    }
    fn accept_local(&self, _: &str) -> bool {
        true
    }
    fn check(&self, _: &[String], _: &[String]) -> Result<(), String> {
        Ok(())
    }
}

/// Converts a store's name to the neutral name.
pub fn to_neutral(name: &str, delimiter: Option<char>) -> String {
    if name.eq_ignore_ascii_case("INBOX") {
        return "INBOX".to_string();
    }
    match delimiter {
        Some(d) if d != '/' => name.split(d).collect::<Vec<_>>().join("/"),
        _ => name.to_string(),
    }
}

/// Converts a neutral name to a store's spelling; fails when a level contains that
/// store's delimiter (the folder cannot exist there under the same structure).
pub fn from_neutral(name: &str, delimiter: Option<char>) -> Result<String, String> {
    if name == "INBOX" {
        return Ok(name.to_string());
    }
    match delimiter {
        Some(d) if d != '/' => {
            let parts: Vec<&str> = name.split('/').collect();
            if let Some(bad) = parts.iter().find(|p| p.contains(d)) {
                return Err(format!(
                    "folder {name:?}: level {bad:?} contains {d:?}, the other server's hierarchy delimiter"
                ));
            }
            Ok(parts.join(&d.to_string()))
        }
        _ => Ok(name.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_round_trip() {
        assert_eq!(to_neutral("Lists.rust", Some('.')), "Lists/rust");
        assert_eq!(
            from_neutral("Lists/rust", Some('.')).as_deref(),
            Ok("Lists.rust")
        );
        assert_eq!(to_neutral("inbox", Some('.')), "INBOX");
        assert!(from_neutral("a.b/c", Some('.')).is_err());
        assert_eq!(from_neutral("a.b/c", Some('/')).as_deref(), Ok("a.b/c"));
    }
}
