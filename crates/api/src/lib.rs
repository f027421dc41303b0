//! The coaching HTTP API (DOMAIN.md), served from PostgreSQL, with
//! per-endpoint data backends and shadow reads.

mod backend_mode;

pub use backend_mode::{DataBackendMode, EndpointGroup};
