//! A router that remembers its routes, so that the OpenAPI document can be
//! checked against what is really served.

use axum::handler::Handler;
use axum::routing::{delete, get, patch, post, MethodRouter};
use axum::Router;

use crate::state::AppState;

/// An HTTP method of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verb {
    Get,
    Post,
    Patch,
    Delete,
}

impl Verb {
    /// The method as OpenAPI writes it.
    pub fn as_openapi(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
        }
    }
}

/// Routes of one resource, or of the whole API.
pub struct ApiRoutes {
    router: Router<AppState>,
    table: Vec<(Verb, &'static str)>,
}

impl Default for ApiRoutes {
    fn default() -> Self {
        ApiRoutes::new()
    }
}

impl ApiRoutes {
    pub fn new() -> ApiRoutes {
        ApiRoutes {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    fn add(
        mut self,
        verb: Verb,
        path: &'static str,
        method_router: MethodRouter<AppState>,
    ) -> ApiRoutes {
        self.router = self.router.route(path, method_router);
        self.table.push((verb, path));
        self
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        handler: H,
    ) -> ApiRoutes {
        self.add(Verb::Get, path, get(handler))
    }

    pub fn post<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        handler: H,
    ) -> ApiRoutes {
        self.add(Verb::Post, path, post(handler))
    }

    pub fn patch<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        handler: H,
    ) -> ApiRoutes {
        self.add(Verb::Patch, path, patch(handler))
    }

    pub fn delete<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        handler: H,
    ) -> ApiRoutes {
        self.add(Verb::Delete, path, delete(handler))
    }

    /// Both route sets in one.
    pub fn merge(mut self, other: ApiRoutes) -> ApiRoutes {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    /// Every (method, path) served.
    pub fn table(&self) -> &[(Verb, &'static str)] {
        &self.table
    }

    pub fn into_router(self) -> Router<AppState> {
        self.router
    }
}
