//! The integration tests, one crate read as a specification of audian-receiver: each module
//! is a part of the README, each test one behaviour with a sentence for a name, run against
//! the real Postgres, Redis, RabbitMQ and NATS JetStream on this machine. `fixtures` holds
//! one fixture per service, the one polling helper and the one way to run the binary.

mod cli;
mod console;
mod edge;
mod fixtures;
mod forward;
mod intake;
mod metrics;
mod migration;
mod outage;
mod properties;
mod proxy;
mod reload;
mod rotation;
mod sealing;
mod secrets_in_config;
mod targets;
mod tls;
mod tracing;
mod wellformed;
