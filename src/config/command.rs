//! External commands named in the configuration: `remotepasscmd`, `preauthtunnel`,
//! `transporttunnel`, `presynchook`, `postsynchook`.
//!
//! Rule: a command line is split into words with POSIX shell quoting (`'...'`, `"..."`,
//! backslash) and run directly, without a shell. If it contains shell syntax outside quotes
//! — `|`, `&`, `;`, `<`, `>`, `(`, `)`, `$`, a backquote, a glob (`*`, `?`, `[`), a leading
//! `~` or `#`, or a `VAR=value` prefix — the user evidently wants a shell, and the whole line
//! is given to `/bin/sh -c` unchanged. Either way the command behaves as it would typed at a
//! shell prompt; the simple case merely spares a shell process and any surprise from the
//! user's login environment.

use std::fmt;
use std::process::Command;

/// A command line from the configuration, ready to run.
#[derive(Clone, PartialEq, Eq)]
pub struct CommandSpec {
    text: String,
    argv: Vec<String>,
    shell: bool,
}

impl CommandSpec {
    /// Parses a command line (see the module documentation for the rules).
    pub fn parse(text: &str) -> Result<CommandSpec, String> {
        let text = text.trim();
        let (words, shell) = split(text)?;
        if shell {
            return Ok(CommandSpec {
                text: text.to_string(),
                argv: vec!["/bin/sh".to_string(), "-c".to_string(), text.to_string()],
                shell: true,
            });
        }
        if words.is_empty() || words[0].is_empty() {
            return Err("an empty command".to_string());
        }
        Ok(CommandSpec {
            text: text.to_string(),
            argv: words,
            shell: false,
        })
    }

    /// The command line as written in the configuration.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The program and its arguments (`/bin/sh -c TEXT` when a shell is needed).
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// Whether the command runs through `/bin/sh -c`.
    pub fn uses_shell(&self) -> bool {
        self.shell
    }

    /// A [`Command`] for it; the caller sets up stdio.
    pub fn to_command(&self) -> Command {
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..]);
        cmd
    }
}

impl fmt::Debug for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommandSpec({:?})", self.argv)
    }
}

impl fmt::Display for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Splits `text` into words; the flag says whether it contains shell syntax outside quotes.
fn split(text: &str) -> Result<(Vec<String>, bool), String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut shell = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                if c == '\n' {
                    shell = true;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated ' quote".to_string()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('$' | '`' | '"' | '\\')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated \" quote".to_string()),
                        },
                        Some(d @ ('$' | '`')) => {
                            shell = true;
                            word.push(d);
                        }
                        Some(c) => word.push(c),
                        None => return Err("unterminated \" quote".to_string()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(c) => word.push(c),
                    None => return Err("a trailing backslash".to_string()),
                }
            }
            '|' | '&' | ';' | '<' | '>' | '(' | ')' | '$' | '`' | '*' | '?' | '[' => {
                shell = true;
                in_word = true;
                word.push(c);
            }
            '~' | '#' if !in_word => {
                shell = true;
                in_word = true;
                word.push(c);
            }
            '=' if words.is_empty() && in_word => {
                shell = true;
                word.push(c);
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok((words, shell))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_commands_are_split() {
        let c = CommandSpec::parse(r#"pass show "mail/my account" --x='a b' c\ d"#).unwrap();
        assert!(!c.uses_shell());
        assert_eq!(
            c.argv(),
            ["pass", "show", "mail/my account", "--x=a b", "c d"]
        );
        let c = CommandSpec::parse("sh -c 'gpg -d f | head -1'").unwrap();
        assert!(!c.uses_shell());
        assert_eq!(c.argv(), ["sh", "-c", "gpg -d f | head -1"]);
        assert!(CommandSpec::parse("'open").is_err());
        assert!(CommandSpec::parse("  ").is_err());
    }

    #[test]
    fn shell_syntax_uses_a_shell() {
        for text in [
            "gpg -d f | head -1",
            "cat ~/pw",
            "echo $HOME",
            "FOO=1 cmd",
            "cat *.txt",
            "a && b",
            "echo \"$(date)\"",
        ] {
            let c = CommandSpec::parse(text).unwrap();
            assert!(c.uses_shell(), "{text}");
            assert_eq!(c.argv(), ["/bin/sh", "-c", text]);
        }
        assert!(!CommandSpec::parse("cmd --opt=x a~b").unwrap().uses_shell());
    }
}
