//! Password sources for commands that take one on the command line.

use std::io::IsTerminal;

use crate::imap::Password;

/// Gets a password from an environment variable, a command's first output line, or a
/// terminal prompt (never from a plain argument, which other users could see).
pub fn obtain(env: Option<&str>, cmd: Option<&str>, prompt: &str) -> anyhow::Result<Password> {
    if let Some(var) = env {
        return std::env::var(var)
            .map(Password::new)
            .map_err(|_| anyhow::anyhow!("environment variable {var} is not set"));
    }
    if let Some(cmd) = cmd {
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| anyhow::anyhow!("cannot run password command: {e}"))?;
        if !out.status.success() {
            anyhow::bail!("password command failed ({})", out.status);
        }
        let text = String::from_utf8(out.stdout)
            .map_err(|_| anyhow::anyhow!("password command printed invalid UTF-8"))?;
        let line = text.lines().next().unwrap_or("").to_string();
        if line.is_empty() {
            anyhow::bail!("password command printed nothing");
        }
        return Ok(Password::new(line));
    }
    if std::io::stdin().is_terminal() {
        return prompt_tty(prompt);
    }
    anyhow::bail!(
        "no password: use --password-env VAR or --password-cmd CMD (no terminal to prompt on)"
    )
}

/// Prompts on the terminal without echo.
pub fn prompt_tty(prompt: &str) -> anyhow::Result<Password> {
    use std::io::Write;
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain data; tcgetattr fills it for a terminal fd.
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd is stdin and `term` is a valid pointer.
    let have_term = unsafe { libc::tcgetattr(fd, &mut term) } == 0;
    let saved = term;
    if have_term {
        term.c_lflag &= !libc::ECHO;
        // SAFETY: as above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &term) };
    }
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let r = std::io::stdin().read_line(&mut line);
    if have_term {
        // SAFETY: restores the saved settings on the same fd.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
        eprintln!();
    }
    r.map_err(|e| anyhow::anyhow!("cannot read password: {e}"))?;
    Ok(Password::new(line.trim_end_matches(['\r', '\n'])))
}
