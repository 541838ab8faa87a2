//! Plain TCP connections.
