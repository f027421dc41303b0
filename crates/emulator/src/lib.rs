//! A local server that answers Airtable's Web API (records, metadata,
//! webhooks) with Airtable's limits and faults, for tests, benchmarks and the
//! demo. Built by its own issue.
