//! audian-receiver: receives Audian webhooks over HTTPS, proves each genuine, records it
//! exactly once in Postgres before answering, and forwards it at least once downstream.

pub mod cli;
pub mod commands;
pub mod config;
pub mod console;
pub mod escape;
pub mod forward;
pub mod intake;
pub mod sealing;
pub mod secret_url;
pub mod server;
pub mod signing;
pub mod store;
pub mod telemetry;
