//! The emulator's HTTP behaviour, driven with reqwest against an
//! in-process emulator on port 0.

mod support;

mod control;
mod fields;
mod formula;
mod limits;
mod meta;
mod persistence;
mod records;
mod webhooks;
