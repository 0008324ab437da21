//! Everything that talks to the server: the API client (one call with its
//! retries, login and token, envelope, connection state) and the dialects,
//! which own every byte on the wire. The sync flows above see only the
//! dialect-neutral values this module hands them.

pub mod auth;
pub mod call;
pub mod client;
pub mod config;
pub mod dialect;
pub(crate) mod envelope;
pub mod retry;
pub mod shutdown;
