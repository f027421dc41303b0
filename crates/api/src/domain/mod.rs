//! Domain types that requests are parsed into at the edge ("parse, don't
//! validate"): past the handlers, an `Email` is an email and a `DateRange`
//! runs forwards.

mod ids;
pub(crate) mod schema;
mod text;
mod time;

pub use ids::*;
pub use text::{Email, Name, Notes, Password};
pub use time::{parse_date, DateRange, UserTimeZone, MAX_PROGRAM_DAYS};

use serde::{Deserialize, Serialize};

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    /// The role as stored (`users_pg.role`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// Reads a stored role; anything but `admin` is a plain user, so that a
    /// value the team typed in Airtable never grants more than it should.
    pub fn from_stored(raw: &str) -> Role {
        if raw.eq_ignore_ascii_case("admin") {
            Role::Admin
        } else {
            Role::User
        }
    }
}

/// Whose data a read may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only this user's.
    Owner(UserId),
    /// Anyone's: an admin reading.
    Any,
}

impl Scope {
    /// Whether a row owned by `owner` is visible.
    pub fn allows(&self, owner: UserId) -> bool {
        match self {
            Scope::Owner(id) => *id == owner,
            Scope::Any => true,
        }
    }

    /// The owner to filter by, or `None` for anyone.
    pub fn owner(&self) -> Option<UserId> {
        match self {
            Scope::Owner(id) => Some(*id),
            Scope::Any => None,
        }
    }
}
