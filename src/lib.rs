//! ftguard: watches fine-tuning jobs of OpenAI-compatible and Portkey accounts, stores them in
//! SQLite, applies policies and cancels offenders exactly once. See ARCHITECTURE.md.

// stdout goes through `out!`/`outln!` (output.rs): `println!` panics on a closed pipe.
#![deny(clippy::print_stdout)]
// No `as` cast that can wrap, truncate or lose a sign: times and amounts from a hostile API or
// a careless config saturate or fail instead (model.rs holds the few deliberate conversions).
#![deny(
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_possible_truncation
)]

// Layers, bottom to top (ARCHITECTURE.md; `tests/it/architecture.rs` keeps imports pointing
// down): model, telemetry, sim, cost, policy, replay, config, provider, store, notify, sync, enforce,
// app, daemon.
pub mod app;
pub mod config;
pub mod cost;
pub mod daemon;
pub mod enforce;
pub mod model;
pub mod notify;
pub mod policy;
pub mod provider;
pub mod replay;
pub mod sim;
pub mod store;
pub mod sync;
pub mod telemetry;
