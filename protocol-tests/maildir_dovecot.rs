//! The dovecot engine on the local side (dovecot's imap binary as a PREAUTH tunnel on
//! bob's Maildir, run as the Maildir's owner since the tests run as root), and the
//! cross-checks between the native engine and dovecot on the same Maildir.

use super::maildir_bed::{copied, Bed, Engine, LOCAL};
use super::maildir_native::seed;

fn first_sync(sep: char) {
    let bed = Bed::new(Engine::Dovecot, sep);
    let folders = seed(&bed, sep);
    let out = bed.sync();
    assert_eq!(copied(&out), (16, 6), "{out}");
    let names: Vec<&str> = folders.iter().map(String::as_str).collect();
    bed.assert_same(&names);
    let out = bed.sync();
    assert_eq!(copied(&out), (0, 0), "{out}");
    assert!(out.contains("(0 opened)"), "{out}");
    bed.assert_same(&names);
    assert_eq!(bed.messages(LOCAL, "INBOX").len(), 12);
}

#[test]
fn maildir_dovecot_first_sync_nested() {
    first_sync('/');
}

#[test]
fn maildir_dovecot_first_sync_maildirplusplus() {
    first_sync('.');
}
