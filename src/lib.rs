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

pub mod app;
pub mod clock;
pub mod config;
pub mod cost;
pub mod daemon;
pub mod deadline;
pub mod demo;
pub mod enforce;
pub mod estimate;
pub mod http;
pub mod lock;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod output;
pub mod policy;
pub mod pricing;
pub mod provider;
pub mod schedule;
pub mod sdnotify;
pub mod secret;
pub mod sim;
pub mod store;
pub mod sync;
pub mod sync_watch;
