//! TLS (implicit, and the upgrade step of STARTTLS) with certificate verification and pinning.
