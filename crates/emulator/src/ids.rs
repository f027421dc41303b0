//! Airtable-shaped identifiers: a three-letter prefix and 14 base62 characters.

use rand::Rng;

/// Characters of the random part; every id Airtable has shown uses only these.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Length of every Airtable id: prefix (3) plus random part (14).
pub const ID_LEN: usize = 17;

/// Prefix of base ids.
pub const BASE: &str = "app";
/// Prefix of table ids.
pub const TABLE: &str = "tbl";
/// Prefix of field ids.
pub const FIELD: &str = "fld";
/// Prefix of view ids.
pub const VIEW: &str = "viw";
/// Prefix of record ids.
pub const RECORD: &str = "rec";
/// Prefix of webhook ids.
pub const WEBHOOK: &str = "ach";
/// Prefix of select choice ids.
pub const CHOICE: &str = "sel";
/// Prefix of attachment ids.
pub const ATTACHMENT: &str = "att";
/// Prefix of list iterators (the first half of a record-list offset).
pub const ITERATOR: &str = "itr";
/// Prefix of user ids.
pub const USER: &str = "usr";

/// A fresh random id with the given prefix.
pub fn new_id(prefix: &str) -> String {
    let mut rng = rand::rng();
    let mut id = String::with_capacity(ID_LEN);
    id.push_str(prefix);
    for _ in 0..(ID_LEN - prefix.len()) {
        let i = rng.random_range(0..ALPHABET.len());
        id.push(char::from(ALPHABET[i]));
    }
    id
}

/// Whether `s` has the shape of an id with this prefix.
pub fn is_id(s: &str, prefix: &str) -> bool {
    s.len() == ID_LEN
        && s.starts_with(prefix)
        && s.bytes()
            .skip(prefix.len())
            .all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_have_the_prefix_and_seventeen_characters() {
        for prefix in [BASE, TABLE, FIELD, VIEW, RECORD, WEBHOOK] {
            let id = new_id(prefix);
            assert_eq!(id.len(), 17);
            assert!(is_id(&id, prefix), "{id}");
        }
    }

    #[test]
    fn is_id_rejects_wrong_prefix_length_and_characters() {
        assert!(!is_id("recABC", RECORD));
        assert!(!is_id("tblAAAAAAAAAAAAAA", RECORD));
        assert!(!is_id("recAAAAAAAAAAAA-A", RECORD));
    }
}
