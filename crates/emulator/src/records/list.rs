//! List records: filtering, sorting, projection and pagination with
//! expiring offsets bound to the query that started them.

use std::collections::{HashMap, VecDeque};

use serde_json::{json, Value};

use crate::clock::Millis;
use crate::error::ApiError;
use crate::formula::Expr;
use crate::ids;
use crate::model::{Base, Table};
use crate::records::filter::{compare_records, compile, passes, resolve_sort, RecordCtx};
use crate::records::params::ListParams;
use crate::render::{record_json, CellFormat, RenderOpts};

/// How the remaining records of a listing are found.
#[derive(Debug)]
enum Plan {
    /// A sorted result, fixed when the listing started.
    Snapshot { seqs: Vec<u64>, pos: usize },
    /// Creation order: scan onwards from a sequence number, filtering as
    /// we go, so that the first page of a huge table costs one page.
    Scan { next_seq: u64, filters: Vec<Expr> },
}

/// A listing in progress, named by the `itr…` half of an offset.
#[derive(Debug)]
struct ListIterator {
    base_id: String,
    table_id: String,
    signature: String,
    last_record_id: String,
    plan: Plan,
    /// Records still allowed by `maxRecords`.
    cap: Option<usize>,
    expires_ms: Millis,
}

/// Listings in progress. Not persisted: a restart expires every offset, as
/// Airtable documents for its own restarts.
#[derive(Debug, Default)]
pub(crate) struct Iterators {
    map: HashMap<String, ListIterator>,
    /// Ids by time of (re)insertion; the offset lifetime is fixed, so this
    /// is also expiry order. Entries of resumed or finished listings are
    /// stale and skipped.
    order: VecDeque<(Millis, String)>,
}

/// Most listings kept at once; the oldest go first beyond this.
const MAX_ITERATORS: usize = 10_000;

impl Iterators {
    fn insert(&mut self, id: String, it: ListIterator, now: Millis) {
        while let Some((expires, front)) = self.order.front() {
            let stale = self
                .map
                .get(front)
                .is_none_or(|live| live.expires_ms != *expires);
            if !stale && *expires > now && self.map.len() < MAX_ITERATORS {
                break;
            }
            if !stale {
                self.map.remove(front);
            }
            self.order.pop_front();
        }
        self.order.push_back((it.expires_ms, id.clone()));
        self.map.insert(id, it);
    }

    /// Forgets every listing (reset).
    pub fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }
}

fn invalid_offset(offset: &str) -> ApiError {
    ApiError::unprocessable(
        "INVALID_OFFSET_VALUE",
        format!("The value of offset {offset} is invalid"),
    )
}

fn iterator_gone() -> ApiError {
    ApiError::type_only(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "LIST_RECORDS_ITERATOR_NOT_AVAILABLE",
    )
}

/// What the caller needs to answer one page.
pub(crate) struct ListContext<'a> {
    pub base: &'a Base,
    pub t: usize,
    pub now: Millis,
    pub offset_ttl_ms: Millis,
    pub iterators: &'a parking_lot::Mutex<Iterators>,
}

/// Answers one page of a listing: `{"records": [...], "offset"?: "..."}`.
pub(crate) fn list_page(cx: &ListContext, params: &ListParams) -> Result<Value, ApiError> {
    let base = cx.base;
    let table = &base.tables[cx.t];
    let only: Option<Vec<usize>> = match &params.fields {
        Some(names) => Some(
            names
                .iter()
                .map(|n| {
                    table
                        .field_index(n)
                        .ok_or_else(|| crate::records::write::unknown_field(n))
                })
                .collect::<Result<_, _>>()?,
        ),
        None => None,
    };
    let format = output_format(params)?;
    let page_size = params.page_size.unwrap_or(100);

    let (mut plan, mut cap, iterator_id) = match &params.offset {
        Some(offset) => resume(cx, params, offset)?,
        None => (
            start(base, table, params, cx.now)?,
            params.max_records,
            None,
        ),
    };
    let want = cap.map_or(page_size, |c| c.min(page_size));
    let ctx_now = cx.now;
    let (seqs, more) = next_page(base, table, &mut plan, want, ctx_now);
    if let Some(c) = cap.as_mut() {
        *c -= seqs.len().min(*c);
    }
    let more = more && cap != Some(0);

    let opts = RenderOpts {
        by_field_id: params.by_field_id,
        only: only.as_deref(),
        format,
        comment_count: params.comment_count,
    };
    let records: Vec<Value> = seqs
        .iter()
        .filter_map(|s| table.records.get(s))
        .map(|r| record_json(base, table, r, &opts))
        .collect();
    let mut answer = json!({ "records": records });
    if more {
        let last = seqs
            .last()
            .and_then(|s| table.records.get(s))
            .map(|r| r.id.clone())
            .unwrap_or_else(|| ids::new_id(ids::RECORD));
        let id = iterator_id.unwrap_or_else(|| ids::new_id(ids::ITERATOR));
        answer["offset"] = json!(format!("{id}/{last}"));
        let it = ListIterator {
            base_id: base.id.clone(),
            table_id: table.id.clone(),
            signature: params.signature(),
            last_record_id: last,
            plan,
            cap,
            expires_ms: cx.now + cx.offset_ttl_ms,
        };
        cx.iterators.lock().insert(id, it, cx.now);
    }
    Ok(answer)
}

fn output_format(params: &ListParams) -> Result<CellFormat, ApiError> {
    if !params.cell_format_string {
        return Ok(CellFormat::Json);
    }
    let (Some(zone), Some(_locale)) = (&params.time_zone, &params.user_locale) else {
        return Err(ApiError::invalid_request_because(
            "Invalid request: cellFormat string requires timeZone and userLocale",
        ));
    };
    crate::dates::parse_zone(zone)
        .map(CellFormat::Text)
        .ok_or_else(|| ApiError::invalid_request_because(format!("Unknown timeZone {zone}")))
}

/// Starts a listing: resolves the view, the formula and the sort.
fn start(base: &Base, table: &Table, params: &ListParams, now: Millis) -> Result<Plan, ApiError> {
    let mut filters = Vec::new();
    let mut sort = params.sort.clone();
    if let Some(name) = &params.view {
        let view = table.view(name).ok_or_else(|| {
            ApiError::unprocessable("VIEW_NAME_NOT_FOUND", format!("Could not find view {name}"))
        })?;
        if let Some(f) = &view.filter {
            filters.push(compile(table, f)?);
        }
        if sort.is_empty() {
            sort = view.sort.clone();
        }
    }
    if let Some(f) = &params.filter {
        filters.push(compile(table, f)?);
    }
    let keys = resolve_sort(table, &sort)?;
    if keys.is_empty() {
        return Ok(Plan::Scan {
            next_seq: 0,
            filters,
        });
    }
    let mut matching: Vec<(&u64, &crate::model::Record)> = table
        .records
        .iter()
        .filter(|(_, r)| {
            let ctx = RecordCtx {
                base,
                table,
                record: r,
                now,
            };
            filters.iter().all(|f| passes(f, &ctx))
        })
        .collect();
    // Stable sort keeps creation order among equal keys.
    matching.sort_by(|(_, a), (_, b)| compare_records(table, &keys, a, b));
    Ok(Plan::Snapshot {
        seqs: matching.into_iter().map(|(s, _)| *s).collect(),
        pos: 0,
    })
}

/// Picks up a listing from its offset.
fn resume(
    cx: &ListContext,
    params: &ListParams,
    offset: &str,
) -> Result<(Plan, Option<usize>, Option<String>), ApiError> {
    let (itr, rec) = offset
        .split_once('/')
        .ok_or_else(|| invalid_offset(offset))?;
    if !ids::is_id(itr, ids::ITERATOR) || !ids::is_id(rec, ids::RECORD) {
        return Err(invalid_offset(offset));
    }
    let mut iterators = cx.iterators.lock();
    let it = iterators.map.remove(itr).ok_or_else(iterator_gone)?;
    if it.expires_ms <= cx.now {
        return Err(iterator_gone());
    }
    let table = &cx.base.tables[cx.t];
    let same_query = it.base_id == cx.base.id
        && it.table_id == table.id
        && it.last_record_id == rec
        && it.signature == params.signature();
    if !same_query {
        // Put it back: a wrong offset must not break the right listing.
        iterators.map.insert(itr.to_owned(), it);
        return Err(invalid_offset(offset));
    }
    Ok((it.plan, it.cap, Some(itr.to_owned())))
}

/// The next page's sequence numbers, and whether more records follow.
fn next_page(
    base: &Base,
    table: &Table,
    plan: &mut Plan,
    want: usize,
    now: Millis,
) -> (Vec<u64>, bool) {
    let mut page = Vec::with_capacity(want);
    match plan {
        Plan::Snapshot { seqs, pos } => {
            while *pos < seqs.len() && page.len() < want {
                if table.records.contains_key(&seqs[*pos]) {
                    page.push(seqs[*pos]);
                }
                *pos += 1;
            }
            while *pos < seqs.len() && !table.records.contains_key(&seqs[*pos]) {
                *pos += 1;
            }
            (page, *pos < seqs.len())
        }
        Plan::Scan { next_seq, filters } => {
            let mut more = false;
            for (seq, record) in table.records.range(*next_seq..) {
                let ctx = RecordCtx {
                    base,
                    table,
                    record,
                    now,
                };
                if !filters.iter().all(|f| passes(f, &ctx)) {
                    continue;
                }
                if page.len() == want {
                    *next_seq = *seq;
                    more = true;
                    break;
                }
                page.push(*seq);
            }
            (page, more)
        }
    }
}
