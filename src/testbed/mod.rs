//! Private dovecot instances.
