//! `events list|show|replay`: inspect and repair the outbox.

use crate::cli::EventsCommand;
use crate::config::Settings;

use super::CommandError;

pub async fn run(_settings: &Settings, _command: EventsCommand) -> Result<(), CommandError> {
    Err(CommandError::Usage(
        "events commands are not implemented yet".into(),
    ))
}
