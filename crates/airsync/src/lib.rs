//! airsync: keeps a PostgreSQL-primary coaching backend and its Airtable base
//! in step, both ways. This crate holds the command line, the configuration
//! and the telemetry set-up; the parts live in their own crates
//! (`airsync-airtable`, `airsync-emulator`, `airsync-sync`, `airsync-api`,
//! `airsync-db`).

pub mod airtable;
pub mod app;
pub mod cli;
pub mod config;
pub mod invitations;
pub mod server;
pub mod telemetry;
