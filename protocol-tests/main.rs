//! End-to-end protocol tests against a real dovecot.
