//! `events list|show|replay`: inspect and repair forwarding from the command line.

use anyhow::Context;
use sqlx::PgPool;

use super::CommandError;
use crate::cli::EventsCommand;
use crate::config::{Settings, payload_keys_from_env};
use crate::escape::for_terminal;
use crate::store;
use crate::store::operator::{self, DeliveryRow, DeliveryState, EventSummary};
use crate::store::retention;

pub async fn run(settings: &Settings, command: EventsCommand) -> Result<(), CommandError> {
    let pool = store::pool(&settings.database).context("database.url")?;
    match command {
        EventsCommand::List {
            state,
            target,
            limit,
        } => {
            check_target(settings, target.as_deref())?;
            if limit <= 0 {
                return Err(CommandError::Usage("--limit must be greater than 0".into()));
            }
            let rows = operator::list(&pool, state, target.as_deref(), limit)
                .await
                .context("listing deliveries")?;
            for row in rows {
                println!("{}", line(&row));
            }
            Ok(())
        }
        EventsCommand::Show { id } => show(&pool, &id).await,
        EventsCommand::Replay { ids, state, target } => {
            check_target(settings, target.as_deref())?;
            replay(&pool, ids, state, target).await
        }
        EventsCommand::Forget { ids } => forget(&pool, ids).await,
    }
}

/// `event_id  target  state  attempts=N  last_error`, tab-separated for `cut` and `awk`; what
/// came from outside is escaped, so a tab or a control character cannot shift or forge a column.
fn line(row: &DeliveryRow) -> String {
    format!(
        "{}\t{}\t{}\tattempts={}\t{}",
        for_terminal(&row.event_id),
        for_terminal(&row.target),
        row.state.as_str(),
        row.attempts,
        for_terminal(row.last_error.as_deref().unwrap_or("-"))
    )
}

async fn show(pool: &PgPool, id: &str) -> Result<(), CommandError> {
    let event = operator::event_summary(pool, id)
        .await
        .context("reading the event")?
        .ok_or_else(|| CommandError::Usage(format!("no event with id \"{}\"", for_terminal(id))))?;
    println!("event_id:    {}", for_terminal(id));
    println!("type:        {}", for_terminal(&event.event_type));
    println!("received_at: {}", event.received_at);
    println!("payload:     {}", payload_line(id, &event)?);
    for row in operator::for_event(pool, id)
        .await
        .context("reading deliveries")?
    {
        match row.next_attempt_at {
            Some(at) if row.state == DeliveryState::Pending => {
                println!("delivery:    {}\tnext attempt {at}", line(&row));
            }
            _ => println!("delivery:    {}", line(&row)),
        }
    }
    Ok(())
}

/// Size and hash of the body as Audian sent it; a sealed payload is opened (in memory only)
/// with AUDIAN_PAYLOAD_KEYS, which shows the configured keys can still read it.
fn payload_line(id: &str, event: &EventSummary) -> Result<String, CommandError> {
    let sha = hex::encode(&event.sha256);
    let Some(stored) = &event.payload else {
        return Ok(format!("dropped (retention or erasure), sha256 {sha}"));
    };
    let Some(key_id) = event.payload_key_id.as_deref() else {
        return Ok(format!(
            "{} bytes, sha256 {sha}, stored clear",
            stored.len()
        ));
    };
    let keys = payload_keys_from_env()?;
    Ok(match keys.open(id, Some(key_id), stored) {
        Ok(body) => format!(
            "{} bytes, sha256 {sha}, sealed under key `{key_id}`",
            body.len()
        ),
        Err(error) => format!("cannot be opened here ({error}), sha256 {sha}"),
    })
}

async fn replay(
    pool: &PgPool,
    ids: Vec<String>,
    state: Option<DeliveryState>,
    target: Option<String>,
) -> Result<(), CommandError> {
    if ids.is_empty() && state.is_none() {
        return Err(CommandError::Usage(
            "name the events to replay (ID…) or a state (--state dead)".into(),
        ));
    }
    let ids = (!ids.is_empty()).then_some(ids);
    if let Some(ids) = &ids {
        check_known(pool, ids).await?;
    }
    let count = operator::replay(pool, ids.as_deref(), state, target.as_deref())
        .await
        .context("replaying deliveries")?;
    println!("replayed {count} deliveries");
    Ok(())
}

/// Every id must be a recorded event; otherwise nothing is done and the unknown are named.
async fn check_known(pool: &PgPool, ids: &[String]) -> Result<(), CommandError> {
    let unknown = operator::unknown_events(pool, ids)
        .await
        .context("checking ids")?;
    if unknown.is_empty() {
        Ok(())
    } else {
        let unknown: Vec<_> = unknown.iter().map(|id| for_terminal(id)).collect();
        Err(CommandError::Usage(format!(
            "no event with id {}",
            unknown.join(", ")
        )))
    }
}

/// Erasure, with one audit line per id (in the log and on stdout).
async fn forget(pool: &PgPool, ids: Vec<String>) -> Result<(), CommandError> {
    check_known(pool, &ids).await?;
    let dropped = retention::forget(pool, &ids)
        .await
        .context("erasing events")?;
    for id in &ids {
        let had_payload = dropped.contains(id);
        tracing::info!(audit = "erasure", event_id = %id, had_payload, "event forgotten: payload dropped, forwarding cancelled");
        println!("forgotten\t{}", for_terminal(id));
    }
    Ok(())
}

/// A `--target` must name a configured target: a typo should not silently match nothing.
fn check_target(settings: &Settings, target: Option<&str>) -> Result<(), CommandError> {
    let Some(target) = target else { return Ok(()) };
    let names: Vec<&str> = settings
        .forward
        .targets
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    if names.contains(&target) {
        Ok(())
    } else {
        Err(CommandError::Usage(format!(
            "unknown target \"{}\" (configured: {})",
            for_terminal(target),
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        )))
    }
}
