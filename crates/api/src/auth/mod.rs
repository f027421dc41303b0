//! Authentication: who is asking, from the access token; and the opaque
//! refresh and setup tokens.

pub mod jwt;
pub mod password;
pub mod proxies;
pub mod throttle;
pub mod tokens;

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;

use crate::domain::{Role, Scope, UserId, UserTimeZone};
use crate::error::{Error, Result};
use crate::state::AppState;

/// The signed-in user, from a valid access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentUser {
    pub id: UserId,
    pub role: Role,
    pub time_zone: UserTimeZone,
}

impl CurrentUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whose data a read by id may see: an admin may read anyone's.
    pub fn read_scope(&self) -> Scope {
        if self.is_admin() {
            Scope::Any
        } else {
            Scope::Owner(self.id)
        }
    }

    /// The user whose list a read returns: the caller, or the `userId` an
    /// admin asked for. A non-admin naming someone else gets a 404, as for
    /// any other user's id.
    pub fn list_subject(&self, requested: Option<UserId>) -> Result<UserId> {
        match requested {
            None => Ok(self.id),
            Some(id) if id == self.id || self.is_admin() => Ok(id),
            Some(_) => Err(Error::not_found_in("user", "userId")),
        }
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        user_from_headers(state, &parts.headers)?.ok_or(Error::Unauthorized(
            "sign in first: the Authorization header is missing",
        ))
    }
}

/// The user of a request's access token; `None` when it carries none, an
/// error when it carries a bad one.
pub(crate) fn user_from_headers(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<CurrentUser>> {
    let Some(header) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    {
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(Error::Unauthorized(
                "the Authorization header must be `Bearer <access token>`",
            ))?;
        let claims = state
            .signer()
            .verify(token, state.now())
            .ok_or(Error::Unauthorized(
                "the access token is invalid or has expired",
            ))?;
        Ok(Some(CurrentUser {
            id: claims.sub,
            role: claims.role,
            time_zone: UserTimeZone::from_stored(&claims.tz),
        }))
    }
}

/// The client's address, for throttling: the peer of the connection, or
/// behind the configured proxies the address they forwarded
/// ([`proxies::TrustedProxies`]).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        Ok(ClientAddress(peer.map(|peer| {
            state.config().trusted_proxies.client(peer, &parts.headers)
        })))
    }
}
