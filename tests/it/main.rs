//! The integration tests, as one crate: the real binary and the real `App` against the
//! simulator, wiremock or a hostile server, each with a fresh temp SQLite file. One crate links
//! sqlx, axum and reqwest once instead of once per file (ARCHITECTURE.md, "Tests").

mod common;

mod architecture;
mod auth_and_secrets;
mod bad_input;
mod cost;
mod crash;
mod daemon;
mod enforce_paths;
mod faults;
mod gateway_shapes;
mod hostile;
mod incremental;
mod migrations;
mod notify;
mod packaging;
mod pipes;
mod portkey_gateway;
mod prism_conformance;
mod provider_retries;
mod replay;
mod run_once;
mod secrets;
mod show;
mod spec_examples;
mod stalled;
mod status;
mod sync;
mod systemd_unit;
mod training;
