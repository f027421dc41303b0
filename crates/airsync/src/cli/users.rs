//! `airsync users`: making accounts from the command line.

use std::time::Duration;

use clap::Subcommand;

use super::{connect, CliError};
use crate::config::Config;

/// How long an invitation's setup token stays valid.
const INVITATION_VALIDITY: Duration = Duration::from_secs(7 * 24 * 3600);

/// `airsync users ...`
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Make a user who can sign in at once (e.g. the first admin).
    Create {
        /// The user's email (unique, case-insensitive).
        #[arg(long)]
        email: String,
        /// The user's name.
        #[arg(long)]
        name: String,
        /// The password (at least the API's minimum length).
        #[arg(long)]
        password: String,
        /// The role: user (default) or admin.
        #[arg(long, value_parser = ["user", "admin"], default_value = "user")]
        role: String,
    },
    /// Issue a single-use setup token with which a user provisioned in
    /// Airtable sets a first password; prints the token.
    Invite {
        /// The user's email.
        email: String,
    },
}

pub async fn run(config: &Config, command: UsersCommand) -> Result<(), CliError> {
    let pool = connect(config).await?;
    let result = match command {
        UsersCommand::Create { email, name, password, role } => {
            airsync_api::create_user(&pool, &email, &name, &password, role == "admin")
                .await
                .map(|id| println!("created user {id} ({email}, {role})"))
        }
        UsersCommand::Invite { email } => airsync_api::invite_user(&pool, &email, INVITATION_VALIDITY)
            .await
            .map(|token| {
                println!("setup token for {email} (valid 7 days, single use):");
                println!("{token}");
                println!("set the password with POST /api/auth/set-password {{\"setupToken\": \"...\", \"newPassword\": \"...\"}}");
            }),
    };
    pool.close().await;
    result.map_err(|err| CliError::Usage(err.to_string()))
}
