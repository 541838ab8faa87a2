//! A remote IMAP command over ssh (openssh crate, ControlMaster shared per host).
