//! Replies that contradict what the server said before or in the same scan: a server that
//! lies (or is broken). Each stops the mailbox before anything is planned, so nothing is
//! changed on the other side and the saved state is not advanced; a later honest run
//! converges. The rules, all checked in the scan of one mailbox (same UIDVALIDITY):
//!
//! - **UIDNEXT** may not go below the saved one (RFC 3501 §2.3.1.1).
//! - **HIGHESTMODSEQ** may not go below the saved one (RFC 7162 §3.1.2.1). Stopping is safer
//!   than a full listing: a server that forgot modseqs may have forgotten expunges too.
//! - **A FETCH of a UID at or above the SELECT's UIDNEXT** is a message never announced,
//!   unless the server has sent an `EXISTS` since that SELECT (a message that arrived).
//! - **VANISHED**: a UID at or above UIDNEXT cannot have been expunged; a UID both
//!   vanished and fetched in the same scan is a contradiction; and when the message count
//!   does not add up (`EXISTS` > known − vanished + new), the vanished UIDs we know are
//!   checked with one `UID SEARCH`: any still present is a lie. Only with all three passing
//!   is a VANISHED UID taken as an expunge to propagate.
//! - **Without QRESYNC**, expunges come from a complete UID listing (`UID SEARCH`, or the
//!   full `UID FETCH 1:n` listing): it must hold exactly EXISTS messages (old plus new),
//!   unless the server announced an arrival or an expunge since the SELECT; a listing that
//!   leaves out a message would otherwise expunge it on the other side.
//!
//! A server that lies consistently (VANISHED, EXISTS and SEARCH together) cannot be told
//! from an honest one.

use std::fmt;

/// What a lying (or broken) server claimed; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lie {
    /// UIDNEXT below the saved one with the same UIDVALIDITY.
    UidnextBackwards {
        /// Saved UIDNEXT.
        saved: u32,
        /// What the server said now.
        now: u32,
    },
    /// HIGHESTMODSEQ below the saved one with the same UIDVALIDITY.
    ModseqBackwards {
        /// Saved HIGHESTMODSEQ.
        saved: u64,
        /// What the server said now.
        now: u64,
    },
    /// A FETCH of a UID at or above UIDNEXT with no new message announced.
    UnannouncedUid {
        /// The UID fetched.
        uid: u32,
        /// The UIDNEXT of the SELECT.
        uidnext: u32,
    },
    /// VANISHED named a UID at or above UIDNEXT.
    VanishedBeyondUidnext {
        /// The UID.
        uid: u32,
        /// The UIDNEXT of the SELECT.
        uidnext: u32,
    },
    /// VANISHED named a UID the same scan also fetched or found present.
    VanishedButPresent {
        /// The UID.
        uid: u32,
    },
    /// A complete UID listing (`UID SEARCH` or `UID FETCH 1:n`) that does not hold the
    /// EXISTS count, with no arrival or expunge announced meanwhile.
    ListingMismatch {
        /// UIDs listed (old ones and new ones).
        listed: usize,
        /// EXISTS of the SELECT.
        exists: u32,
    },
}

impl fmt::Display for Lie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lie::UidnextBackwards { saved, now } => write!(
                f,
                "UIDNEXT went backwards ({now} < {saved}) without a UIDVALIDITY change"
            ),
            Lie::ModseqBackwards { saved, now } => write!(
                f,
                "HIGHESTMODSEQ went backwards ({now} < {saved}) without a UIDVALIDITY change"
            ),
            Lie::UnannouncedUid { uid, uidnext } => write!(
                f,
                "a FETCH of UID {uid}, at or above UIDNEXT {uidnext}, for a message never announced"
            ),
            Lie::VanishedBeyondUidnext { uid, uidnext } => write!(
                f,
                "VANISHED names UID {uid}, at or above UIDNEXT {uidnext}: it never existed"
            ),
            Lie::VanishedButPresent { uid } => {
                write!(f, "VANISHED names UID {uid}, which the server still has")
            }
            Lie::ListingMismatch { listed, exists } => write!(
                f,
                "its UID listing holds {listed} messages where EXISTS said {exists}"
            ),
        }
    }
}

/// A scan stopped by a [`Lie`]: the error a mailbox fails with (`anyhow` downcasts to it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server contradicts itself on mailbox {mailbox:?}: {lie}; stopping this mailbox, nothing changed")]
pub struct ServerLie {
    /// The mailbox (twinbox's name for it).
    pub mailbox: String,
    /// What the server claimed.
    pub lie: Lie,
}

/// The error for `lie` in `mailbox`.
pub(super) fn lie(mailbox: &str, lie: Lie) -> anyhow::Error {
    anyhow::Error::new(ServerLie {
        mailbox: mailbox.to_string(),
        lie,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lie_names_the_mailbox_and_downcasts() {
        let e = lie("Lists/rust", Lie::VanishedButPresent { uid: 7 }).context("remote");
        let text = format!("{e:#}");
        assert!(
            text.contains("\"Lists/rust\"") && text.contains("UID 7, which the server still has"),
            "{text}"
        );
        let typed = e.downcast_ref::<ServerLie>().expect("typed");
        assert_eq!(typed.lie, Lie::VanishedButPresent { uid: 7 });
    }
}
