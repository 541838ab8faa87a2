//! A shell command whose stdin/stdout speak IMAP (`preauthtunnel`, `transporttunnel`).
//!
//! The command runs under `/bin/sh -c` in its own process group (so a terminal's Ctrl-C
//! reaches twinbox alone, which can then log out cleanly, and closing can kill whatever the
//! command started). Its stderr goes to the
//! log (target `twinbox::tunnel`), never into the protocol. A tunnel is as safe as its
//! command: the transport reports `encrypted = false` and `remote_network = false`, since
//! twinbox cannot know what the command does (`ssh host imapd` is encrypted, `nc host 143`
//! is not); configure TLS or trust accordingly.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::process::{Child, Command};
use tokio::sync::{oneshot, watch};

use super::tunnel_io::{forward_stderr, ChildStream, Diagnostics, LogTarget};
use super::{CloseFuture, Transport};

/// How long a tunnel child may take to exit by itself after the stream is closed.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Starts `/bin/sh -c command` and returns its stdout+stdin as the transport's stream.
///
/// Fails only if the shell cannot be started. A command that dies at once (not found,
/// bad arguments) shows at the first read: an `UnexpectedEof` error quoting its exit status
/// and stderr. The close hook waits up to [`CLOSE_GRACE`] for the child to exit (it sees EOF
/// on stdin once the stream is dropped) and then kills its process group. Dropping the
/// transport without closing does the same from a background task.
pub async fn spawn(command: &str) -> anyhow::Result<Transport> {
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start tunnel command `{command}` with /bin/sh"))?;
    let pid = child.id();
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        anyhow::bail!("tunnel command `{command}`: no pipes to the child");
    };
    tracing::debug!(target: "twinbox::tunnel", command, ?pid, "tunnel started");

    let label = format!("tunnel `{command}`");
    let tail = forward_stderr(stderr, LogTarget::Tunnel, label.clone());
    let (exit_tx, exit_rx) = watch::channel(None);
    let (close_tx, close_rx) = oneshot::channel();
    tokio::spawn(supervise(child, label, close_rx, exit_tx));

    let closer = Arc::new(Closer {
        request: Mutex::new(Some(close_tx)),
        exit: exit_rx.clone(),
    });
    let diagnostics = Diagnostics {
        what: format!("tunnel command `{command}`"),
        stderr: tail,
        exit: Some(exit_rx),
    };
    let stream = ChildStream::new(stdout, stdin, diagnostics, closer.clone());
    let on_close = move || -> CloseFuture { Box::pin(async move { closer.close().await }) };
    Ok(Transport {
        stream: Box::new(stream),
        on_close: Some(Box::new(on_close)),
        remote_network: false,
        encrypted: false,
    })
}

/// Shared by the stream and the close hook; when both are gone the child is told to end.
struct Closer {
    request: Mutex<Option<oneshot::Sender<()>>>,
    exit: watch::Receiver<Option<String>>,
}

impl Closer {
    async fn close(&self) {
        if let Ok(mut r) = self.request.lock() {
            if let Some(tx) = r.take() {
                let _ = tx.send(());
            }
        }
        let mut exit = self.exit.clone();
        let _ = tokio::time::timeout(CLOSE_GRACE * 2, exit.wait_for(|e| e.is_some())).await;
    }
}

/// Owns the child: reports its exit, and on a close request (or when every handle is
/// gone) gives it [`CLOSE_GRACE`] to exit, then kills its process group.
async fn supervise(
    mut child: Child,
    label: String,
    close_rx: oneshot::Receiver<()>,
    exit_tx: watch::Sender<Option<String>>,
) {
    let pid = child.id();
    let early = tokio::select! {
        status = child.wait() => Some(status),
        _ = close_rx => None,
    };
    let (description, closing) = match early {
        Some(status) => (describe(status), false),
        None => match tokio::time::timeout(CLOSE_GRACE, child.wait()).await {
            Ok(status) => (describe(status), true),
            Err(_) => {
                kill_group(pid);
                let _ = child.kill().await;
                (
                    format!("killed after not exiting within {CLOSE_GRACE:?}"),
                    true,
                )
            }
        },
    };
    if closing || description == "exit status 0" {
        tracing::debug!(target: "twinbox::tunnel", "{label} ended: {description}");
    } else {
        tracing::warn!(target: "twinbox::tunnel", "{label} ended by itself: {description}");
    }
    let _ = exit_tx.send(Some(description));
}

fn describe(status: std::io::Result<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(127), _) => "exit status 127: command not found".to_string(),
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            (None, None) => s.to_string(),
        },
        Err(e) => format!("cannot wait for it: {e}"),
    }
}

/// SIGKILLs the child's process group, so that what the shell started dies with it.
fn kill_group(pid: Option<u32>) {
    let Some(pgid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    // SAFETY: kill(2) has no memory-safety preconditions. The group id is our child's pid,
    // which is still unreaped (we have not observed its exit), so it names its group.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn cat_echoes_and_closes() {
        let mut t = spawn("cat").await.unwrap();
        assert!(!t.remote_network && !t.encrypted);
        t.stream.write_all(b"* PREAUTH hi\r\n").await.unwrap();
        t.stream.flush().await.unwrap();
        let mut buf = [0u8; 14];
        t.stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"* PREAUTH hi\r\n");
        let started = std::time::Instant::now();
        t.close().await;
        // cat sees EOF on stdin and exits at once: no grace period spent.
        assert!(started.elapsed() < CLOSE_GRACE, "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn failing_command_gives_clear_error_at_first_read() {
        let mut t = spawn("echo 'no such mailbox' >&2; exit 3").await.unwrap();
        let mut buf = [0u8; 16];
        let err = t.stream.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        let msg = err.to_string();
        assert!(msg.contains("exit status 3"), "{msg}");
        assert!(msg.contains("no such mailbox"), "{msg}");
        // Afterwards it is a plain EOF.
        assert_eq!(t.stream.read(&mut buf).await.unwrap(), 0);
        t.close().await;
    }

    #[tokio::test]
    async fn missing_command_names_the_problem() {
        let mut t = spawn("/nonexistent/imapd --preauth").await.unwrap();
        let mut buf = [0u8; 16];
        let msg = t.stream.read(&mut buf).await.unwrap_err().to_string();
        assert!(
            msg.contains("tunnel command `/nonexistent/imapd --preauth`"),
            "{msg}"
        );
        assert!(msg.contains("127"), "{msg}");
        assert!(msg.contains("not found"), "{msg}");
    }

    #[tokio::test]
    async fn stubborn_child_is_killed_on_close() {
        // Ignores stdin EOF and keeps a grandchild holding the pipes.
        let mut t = spawn("trap '' TERM; echo ready; sleep 30; echo late")
            .await
            .unwrap();
        let mut buf = [0u8; 6];
        t.stream.read_exact(&mut buf).await.unwrap();
        let started = std::time::Instant::now();
        t.close().await;
        let took = started.elapsed();
        assert!(took >= CLOSE_GRACE && took < CLOSE_GRACE * 2, "{took:?}");
    }

    #[tokio::test]
    async fn stream_survives_dropping_the_close_hook() {
        let t = spawn("cat").await.unwrap();
        let Transport { mut stream, .. } = t;
        stream.write_all(b"x\n").await.unwrap();
        let mut buf = [0u8; 2];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"x\n");
    }
}
