//! `airsync dead-letter`: look at, replay and purge events that gave up.

use chrono::{Duration as ChronoDuration, Utc};
use clap::{Args, Subcommand};

use airsync_sync::dead_letters::{self, DeadLetter, Purge};

use super::{connect, CliError};
use crate::config::Config;

/// `airsync dead-letter ...`
#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// List dead letters, newest first.
    List {
        /// Only this entity (e.g. user, program).
        #[arg(long)]
        entity: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
    },
    /// Show one dead letter with Airtable's whole error.
    Show {
        /// The dead letter's id (see list).
        id: i64,
    },
    /// Put dead letters back in the outbox once their cause is fixed.
    Replay(ReplayArgs),
    /// Delete dead letters for good.
    Purge(PurgeArgs),
}

/// Which dead letters to replay.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ReplayArgs {
    /// One dead letter, by id.
    id: Option<i64>,
    /// Every dead letter.
    #[arg(long)]
    all: bool,
}

/// Which dead letters to purge.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct PurgeArgs {
    /// One dead letter, by id.
    id: Option<i64>,
    /// Every dead letter that failed longer ago than this, e.g. 30d, 12h, 45m.
    #[arg(long, value_parser = parse_age)]
    older_than: Option<ChronoDuration>,
}

/// Parses an age such as `30d`, `12h`, `45m` or `90s`.
fn parse_age(raw: &str) -> Result<ChronoDuration, String> {
    let raw = raw.trim();
    let split = raw.len().saturating_sub(1);
    let (number, unit) = raw.split_at(split);
    let amount: i64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not an age such as 30d, 12h, 45m or 90s"))?;
    if amount < 0 {
        return Err(format!("{raw:?}: an age cannot be negative"));
    }
    let age = match unit {
        "d" => ChronoDuration::try_days(amount),
        "h" => ChronoDuration::try_hours(amount),
        "m" => ChronoDuration::try_minutes(amount),
        "s" => ChronoDuration::try_seconds(amount),
        _ => None,
    };
    age.ok_or_else(|| format!("{raw:?} is not an age such as 30d, 12h, 45m or 90s"))
}

pub async fn run(config: &Config, command: DeadLetterCommand) -> Result<(), CliError> {
    let pool = connect(config).await?;
    match command {
        DeadLetterCommand::List { entity, limit } => {
            let letters = dead_letters::list(&pool, entity.as_deref(), limit).await?;
            if letters.is_empty() {
                println!("no dead letters");
            } else {
                println!(
                    "{:>6}  {:<20} {:<36} {:<18} {:>6}  {:<20}  error",
                    "id", "entity", "row", "reason", "status", "failed at"
                );
                for letter in &letters {
                    print_row(letter);
                }
            }
        }
        DeadLetterCommand::Show { id } => {
            let letter = dead_letters::get(&pool, id)
                .await?
                .ok_or_else(|| airsync_sync::Error::NotFound(format!("no dead letter {id}")))?;
            print_whole(&letter);
        }
        DeadLetterCommand::Replay(args) => {
            let which = if args.all { None } else { args.id };
            let progress = super::progress::CommandProgress::for_stderr();
            let replayed = dead_letters::replay_reporting(&pool, which, Some(&progress)).await?;
            if replayed == 0 {
                if let Some(id) = which {
                    return Err(
                        airsync_sync::Error::NotFound(format!("no dead letter {id}")).into(),
                    );
                }
            }
            println!("replayed {replayed} dead letter(s) into the outbox");
        }
        DeadLetterCommand::Purge(args) => {
            let which = match (args.id, args.older_than) {
                (Some(id), _) => Purge::One(id),
                (None, Some(age)) => Purge::FailedBefore(Utc::now() - age),
                (None, None) => {
                    return Err(CliError::Usage(
                        "give a dead letter's id or --older-than".into(),
                    ))
                }
            };
            let purged = dead_letters::purge(&pool, which).await?;
            if purged == 0 {
                if let Purge::One(id) = which {
                    return Err(
                        airsync_sync::Error::NotFound(format!("no dead letter {id}")).into(),
                    );
                }
            }
            println!("purged {purged} dead letter(s)");
        }
    }
    pool.close().await;
    Ok(())
}

fn print_row(letter: &DeadLetter) {
    let status = letter
        .http_status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "-".into());
    let error = letter
        .airtable_error_type
        .as_deref()
        .unwrap_or(&letter.last_error);
    // At most 60 characters; a byte cut could split one and panic.
    let error: String = error.chars().take(60).collect();
    println!(
        "{:>6}  {:<20} {:<36} {:<18} {:>6}  {:<20}  {}",
        letter.id,
        letter.entity,
        letter.row_id,
        letter.reason,
        status,
        letter.failed_at.format("%Y-%m-%d %H:%M:%S"),
        error
    );
}

fn print_whole(letter: &DeadLetter) {
    println!("id:                 {}", letter.id);
    println!("entity:             {}", letter.entity);
    println!("row:                {}", letter.row_id);
    println!("operation:          {}", letter.operation);
    println!("reason:             {}", letter.reason);
    println!("attempts:           {}", letter.attempts);
    println!(
        "first enqueued at:  {}",
        letter.first_enqueued_at.to_rfc3339()
    );
    println!("failed at:          {}", letter.failed_at.to_rfc3339());
    println!(
        "http status:        {}",
        letter
            .http_status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into())
    );
    println!(
        "airtable error:     {}",
        letter.airtable_error_type.as_deref().unwrap_or("-")
    );
    println!(
        "airtable message:   {}",
        letter.airtable_error_message.as_deref().unwrap_or("-")
    );
    println!("last error:         {}", letter.last_error);
    println!("idempotency key:    {}", letter.idempotency_key);
}

#[cfg(test)]
mod tests {
    use super::parse_age;

    #[test]
    fn ages_are_read_in_days_hours_minutes_and_seconds() {
        assert_eq!(parse_age("30d").expect("valid").num_days(), 30);
        assert_eq!(parse_age("12h").expect("valid").num_hours(), 12);
        assert_eq!(parse_age("45m").expect("valid").num_minutes(), 45);
        assert_eq!(parse_age("90s").expect("valid").num_seconds(), 90);
        for bad in ["", "d", "30", "3w", "-1d", "x1d"] {
            assert!(parse_age(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
