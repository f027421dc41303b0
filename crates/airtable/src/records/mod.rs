//! Records: the record type and its cells, listing, and writes.

mod list;
mod options;
mod record;
mod write;

pub use list::{Page, MAX_URL_LEN};
pub use options::{CellFormat, GetOptions, ListOptions, Sort, SortDirection, MAX_PAGE_SIZE};
pub use record::{Fields, Record};
pub use write::{RecordUpdate, UpdateMode, UpsertOutcome, WriteOptions, MAX_RECORDS_PER_REQUEST};

pub(crate) use list::pages;
pub(crate) use options::set_query;
pub(crate) use write::{create, delete, update, upsert};
