//! Cursor pagination (SPEC §2): `?limit=` 1..=200 (default 50) and an opaque `?cursor=`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::error::{ApiError, FieldError};

pub(crate) const DEFAULT_LIMIT: usize = 50;
pub(crate) const MAX_LIMIT: usize = 200;

/// A validated page request: at most `limit` items after `after`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageRequest {
    pub(crate) limit: usize,
    pub(crate) after: Option<Uuid>,
}

impl PageRequest {
    pub(crate) fn parse(limit: Option<i64>, cursor: Option<&str>) -> Result<Self, Vec<FieldError>> {
        let mut problems = Vec::new();
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(limit) if (1..=MAX_LIMIT as i64).contains(&limit) => limit as usize,
            Some(_) => {
                problems.push(FieldError { field: "limit".into(), message: "must be between 1 and 200".into() });
                DEFAULT_LIMIT
            }
        };
        let after = match cursor.filter(|cursor| !cursor.is_empty()) {
            None => None,
            Some(cursor) => match decode_cursor(cursor) {
                Some(id) => Some(id),
                None => {
                    problems
                        .push(FieldError { field: "cursor".into(), message: "is not a cursor from this API".into() });
                    None
                }
            },
        };
        if problems.is_empty() { Ok(Self { limit, after }) } else { Err(problems) }
    }

    /// Turns the `limit + 1` rows fetched into a page and the cursor of the next one.
    pub(crate) fn page<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> Uuid) -> (Vec<T>, Option<String>) {
        let next = (rows.len() > self.limit).then(|| {
            rows.truncate(self.limit);
            rows.last().map(|row| encode_cursor(key(row)))
        });
        (rows, next.flatten())
    }
}

fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn decode_cursor(cursor: &str) -> Option<Uuid> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    Uuid::from_slice(&bytes).ok()
}

impl From<Vec<FieldError>> for ApiError {
    fn from(details: Vec<FieldError>) -> Self {
        ApiError::validation(details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_cursors_are_checked() {
        assert_eq!(PageRequest::parse(None, None).map(|p| p.limit).ok(), Some(50));
        assert!(PageRequest::parse(Some(0), None).is_err());
        assert!(PageRequest::parse(Some(201), None).is_err());
        assert!(PageRequest::parse(Some(200), None).is_ok());
        assert!(PageRequest::parse(None, Some("!!")).is_err());
        let id = Uuid::now_v7();
        assert_eq!(PageRequest::parse(None, Some(&encode_cursor(id))).ok().and_then(|p| p.after), Some(id));
    }

    #[test]
    fn a_page_cuts_the_extra_row_into_a_cursor() {
        let request = PageRequest { limit: 2, after: None };
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let (items, next) = request.page(ids.clone(), |id| *id);
        assert_eq!(items, ids[..2]);
        assert_eq!(next.as_deref().and_then(decode_cursor), Some(ids[1]));
        let (items, next) = request.page(ids[..2].to_vec(), |id| *id);
        assert_eq!((items.len(), next), (2, None));
    }
}
