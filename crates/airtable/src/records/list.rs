//! Listing records: pages as a stream, a transparent restart when an
//! offset expires, and the switch to `POST …/listRecords` when the URL
//! would be too long.

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::Stream;
use reqwest::Method;
use serde::Deserialize;
use url::Url;

use super::options::{set_query, ListOptions};
use crate::error::Result;
use crate::metrics::RequestKind;
use crate::records::Record;
use crate::transport::{Call, Replay, Transport};

/// Airtable rejects any URL of this many characters or more (with a 414).
pub const MAX_URL_LEN: usize = 16_000;

/// Room kept in the URL for the `offset` of later pages (`&offset=` and an
/// encoded `itr…/rec…` take about 45 characters), so that one listing uses
/// one form from its first page to its last.
const OFFSET_ALLOWANCE: usize = 100;

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The page's records, never one already yielded by this listing.
    pub records: Vec<Record>,
}

#[derive(Deserialize)]
struct ListAnswer {
    records: Vec<Record>,
    #[serde(default)]
    offset: Option<String>,
}

/// The state of one listing between pages.
struct Listing {
    transport: Arc<Transport>,
    base: String,
    table: String,
    options: ListOptions,
    offset: Option<String>,
    restarts: u32,
    /// Ids already yielded, so that a restart does not yield them again.
    seen: HashSet<String>,
    finished: bool,
    use_post: Option<bool>,
}

/// The pages of a listing as a stream; see [`Table::pages`].
///
/// [`Table::pages`]: crate::Table::pages
pub(crate) fn pages(
    transport: Arc<Transport>,
    base: String,
    table: String,
    options: ListOptions,
) -> impl Stream<Item = Result<Page>> + Send + 'static {
    let listing = Listing {
        transport,
        base,
        table,
        options,
        offset: None,
        restarts: 0,
        seen: HashSet::new(),
        finished: false,
        use_post: None,
    };
    futures_util::stream::try_unfold(listing, |mut listing| async move {
        let page = listing.next_page().await?;
        Ok(page.map(|page| (page, listing)))
    })
}

impl Listing {
    async fn next_page(&mut self) -> Result<Option<Page>> {
        self.options.validate()?;
        while !self.finished {
            let answer = match self.fetch().await {
                Ok(answer) => answer,
                Err(e)
                    if e.is_iterator_expired()
                        && self.offset.is_some()
                        && self.restarts < self.transport.max_list_restarts =>
                {
                    self.restarts += 1;
                    self.offset = None;
                    self.transport.metrics.record_list_restart();
                    tracing::warn!(
                        base = %self.base,
                        table = %self.table,
                        restarts = self.restarts,
                        "list offset expired; listing again from the first page"
                    );
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.offset = answer.offset;
            self.finished = self.offset.is_none();
            let seen = &mut self.seen;
            let records: Vec<Record> = answer
                .records
                .into_iter()
                .filter(|r| seen.insert(r.id.clone()))
                .collect();
            // After a restart a whole page may be made of records already
            // yielded; such a page is skipped rather than yielded empty.
            if !records.is_empty() {
                return Ok(Some(Page { records }));
            }
        }
        Ok(None)
    }

    async fn fetch(&mut self) -> Result<ListAnswer> {
        let use_post = match self.use_post {
            Some(post) => post,
            None => {
                let longest = "x".repeat(OFFSET_ALLOWANCE);
                let post = self.get_url(Some(&longest)).as_str().len() >= MAX_URL_LEN;
                self.use_post = Some(post);
                post
            }
        };
        let offset = self.offset.as_deref();
        let call = if use_post {
            let mut url = self
                .transport
                .url(&["v0", &self.base, &self.table, "listRecords"]);
            let mut pairs = Vec::new();
            self.options
                .locale_pairs(&mut |k, v| pairs.push((k.to_owned(), v.to_owned())));
            set_query(&mut url, &pairs);
            Call::new(RequestKind::ListRecords, Method::POST, url)
                .json(&self.options.post_body(offset))?
                // A read, whatever its method.
                .replay(Replay::Safe)
        } else {
            Call::new(RequestKind::ListRecords, Method::GET, self.get_url(offset))
        };
        let call = call.on(&self.base, Some(&self.table));
        self.transport.send_json(&call).await
    }

    fn get_url(&self, offset: Option<&str>) -> Url {
        let mut url = self.transport.url(&["v0", &self.base, &self.table]);
        set_query(&mut url, &self.options.query_pairs(offset));
        url
    }
}
