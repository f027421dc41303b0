//! Integration tests of the coaching API against a real PostgreSQL: one
//! test binary (one throwaway cluster), a fresh database per test.

mod auth;
mod authorization;
mod contract;
mod limits;
mod modes;
mod openapi;
mod programs;
mod reference;
mod rewards;
mod rollback;
mod security_formula;
mod security_injection;
mod security_tokens;
mod support;
mod usage;
