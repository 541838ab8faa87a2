//! Server binaries unpacked from Debian packages without installing them (Cyrus's `imapd`
//! conflicts with dovecot's; Courier's package would set up its daemons).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Where unpacked packages are kept (`TWINBOX_DEB_CACHE`, else `/var/cache/twinbox-debs`).
pub fn deb_cache() -> PathBuf {
    std::env::var_os("TWINBOX_DEB_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/twinbox-debs"))
}

/// The path of `file` (e.g. `usr/bin/imapd`) inside `package`, unpacked under
/// [`deb_cache`]`/PACKAGE`: downloaded with `apt-get download` and unpacked with
/// `dpkg-deb -x` on first use.
pub fn unpacked(package: &str, file: &str) -> Result<PathBuf> {
    let root = deb_cache().join(package);
    let path = root.join(file);
    if path.exists() {
        return Ok(path);
    }
    let dl = deb_cache().join("downloads");
    std::fs::create_dir_all(&dl).with_context(|| format!("creating {}", dl.display()))?;
    let deb = match find_deb(&dl, package)? {
        Some(d) => d,
        None => {
            let out = Command::new("apt-get")
                .args(["download", package])
                .current_dir(&dl)
                .output()
                .context("running apt-get download")?;
            if !out.status.success() {
                bail!(
                    "apt-get download {package} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            find_deb(&dl, package)?
                .with_context(|| format!("apt-get download {package} left no .deb"))?
        }
    };
    // Unpack into a fresh directory, then rename: a concurrent test sees all or nothing.
    let tmp = deb_cache().join(format!(".{package}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let st = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&tmp)
        .status()
        .context("running dpkg-deb")?;
    if !st.success() {
        bail!("dpkg-deb -x {} failed", deb.display());
    }
    if std::fs::rename(&tmp, &root).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    if !path.exists() {
        bail!("{} has no {file}", deb.display());
    }
    Ok(path)
}

fn find_deb(dir: &Path, package: &str) -> Result<Option<PathBuf>> {
    let prefix = format!("{package}_");
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with(&prefix) && name.ends_with(".deb") {
            return Ok(Some(p));
        }
    }
    Ok(None)
}
