//! What a migration found and did, per collection: documents by schema
//! version, one line per kind of change with its count and example ids,
//! and the documents that still do not decode.

use std::collections::BTreeMap;
use std::fmt;

use mongodb::bson::{Bson, Document};

use super::{Mode, SCHEMA_VERSION};
use crate::store::decode::Undecodable;

/// Example ids kept per line of the report.
const EXAMPLES: usize = 3;

/// The whole report of one run.
#[derive(Debug, Clone)]
pub struct Report {
    pub mode: Mode,
    /// The schema version recorded before the run (0: none).
    pub from: i64,
    pub collections: Vec<CollectionReport>,
}

/// One collection's part of a [`Report`].
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionReport {
    pub collection: &'static str,
    /// Documents at schema 0 (converted, or to convert).
    pub legacy: u64,
    /// Documents already at the current schema.
    pub current: u64,
    /// Each kind of change: its count and up to three example ids.
    pub changes: BTreeMap<String, (u64, Vec<String>)>,
    /// Documents that do not decode even after their conversion.
    pub undecodable: Vec<Undecodable>,
}

impl CollectionReport {
    pub(super) fn new(collection: &'static str) -> Self {
        CollectionReport {
            collection,
            legacy: 0,
            current: 0,
            changes: BTreeMap::new(),
            undecodable: Vec::new(),
        }
    }

    pub(super) fn convert(&mut self, id: &str, changes: &[String]) {
        self.legacy += 1;
        for change in changes {
            let (count, examples) = self.changes.entry(change.clone()).or_default();
            *count += 1;
            if examples.len() < EXAMPLES {
                examples.push(id.to_string());
            }
        }
    }

    pub(super) fn current(&mut self) {
        self.current += 1;
    }

    pub(super) fn undecodable(&mut self, error: &Undecodable) {
        self.undecodable.push(error.clone());
    }
}

/// A document's `_id` for the report (hex for an ObjectId).
pub(super) fn id_of(document: &Document) -> String {
    match document.get("_id") {
        Some(Bson::ObjectId(oid)) => oid.to_hex(),
        Some(other) => other.to_string(),
        None => "(no _id)".into(),
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (verb, header) = match self.mode {
            Mode::DryRun => ("would change", "dry run: nothing was written"),
            Mode::Apply => ("changed", "applied"),
        };
        writeln!(
            f,
            "schema: recorded version {}, this build's {SCHEMA_VERSION} ({header})",
            self.from
        )?;
        for c in &self.collections {
            writeln!(
                f,
                "{}: {} documents: {} at schema 0 (previous service), {} at schema {SCHEMA_VERSION}",
                c.collection,
                c.legacy + c.current,
                c.legacy,
                c.current
            )?;
            for (change, (count, examples)) in &c.changes {
                writeln!(
                    f,
                    "  {verb} {count}: {change} (e.g. {})",
                    examples.join(", ")
                )?;
            }
            for e in &c.undecodable {
                writeln!(
                    f,
                    "  does not decode, left as it is (fix it by hand): {} field `{}`: {}",
                    e.id, e.field, e.message
                )?;
            }
        }
        Ok(())
    }
}
