//! What a user chose for single columns, wherever it was said: source columns left out
//! (`--exclude-column TABLE.COLUMN`, for a column the app's target table does not have)
//! and column types for the tables switchyard makes (`--type TABLE.COLUMN=TYPE`). The
//! same choices come from `sync`'s flags, `ctl sync`'s flags (the `/sync/start` body), a
//! config's `[sync]` section, and a live sync's record (so a restarted proxy resumes with
//! them).

use serde::{Deserialize, Serialize};

/// Column choices, each in its command-line form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ColumnChoices {
    /// `TABLE.COLUMN`: source columns not copied.
    pub exclude_columns: Vec<String>,
    /// `TABLE.COLUMN=TYPE`: the PostgreSQL type of a column switchyard makes.
    pub types: Vec<String>,
}

impl ColumnChoices {
    /// Checks each choice's form (not whether the column exists: that needs the source).
    /// The error names the first malformed one and the form expected.
    pub fn check(&self) -> Result<(), String> {
        if let Some(bad) = self
            .exclude_columns
            .iter()
            .find(|e| split_column(e).is_none())
        {
            return Err(format!(
                "exclude column {bad:?}: expected TABLE.COLUMN, e.g. events.legacy_flag"
            ));
        }
        if let Some(bad) = self.types.iter().find(|t| split_type(t).is_none()) {
            return Err(format!(
                "type {bad:?}: expected TABLE.COLUMN=TYPE, e.g. events.at=timestamptz"
            ));
        }
        Ok(())
    }

    /// These choices with `other`'s added; where both state a column's type, `other`'s
    /// wins (a command's flag over the config).
    pub fn merged(&self, other: &ColumnChoices) -> ColumnChoices {
        let mut out = self.clone();
        for e in &other.exclude_columns {
            if !out.exclude_columns.contains(e) {
                out.exclude_columns.push(e.clone());
            }
        }
        for t in &other.types {
            let column = split_type(t).map(|(c, _)| c);
            out.types
                .retain(|mine| split_type(mine).map(|(c, _)| c) != column);
            out.types.push(t.clone());
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.exclude_columns.is_empty() && self.types.is_empty()
    }

    /// The JSON kept in a live sync's record.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// Reads [`to_json`](Self::to_json)'s form; an empty or unreadable text is no choice
    /// (a record written before choices were kept).
    pub fn from_json(text: &str) -> ColumnChoices {
        serde_json::from_str(text).unwrap_or_default()
    }
}

/// `TABLE.COLUMN` → (table, column), both non-empty.
pub fn split_column(s: &str) -> Option<(&str, &str)> {
    s.split_once('.')
        .filter(|(t, c)| !t.trim().is_empty() && !c.trim().is_empty())
}

/// `TABLE.COLUMN=TYPE` → (`TABLE.COLUMN`, TYPE), with a well-formed column and a type.
pub fn split_type(s: &str) -> Option<(&str, &str)> {
    let (column, ty) = s.split_once('=')?;
    split_column(column)?;
    Some((column.trim(), ty.trim())).filter(|(_, ty)| !ty.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choices(ex: &[&str], ty: &[&str]) -> ColumnChoices {
        ColumnChoices {
            exclude_columns: ex.iter().map(|s| s.to_string()).collect(),
            types: ty.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn malformed_choices_are_named_with_the_form_expected() {
        assert!(
            choices(&["events.flag"], &["events.at=timestamptz"])
                .check()
                .is_ok()
        );
        let e = choices(&["events"], &[]).check().unwrap_err();
        assert!(
            e.contains("\"events\"") && e.contains("TABLE.COLUMN"),
            "{e}"
        );
        let e = choices(&[], &["events.at"]).check().unwrap_err();
        assert!(e.contains("TABLE.COLUMN=TYPE"), "{e}");
        assert!(choices(&[], &["events.=text"]).check().is_err());
        assert!(choices(&[], &["events.at= "]).check().is_err());
    }

    #[test]
    fn a_later_type_for_a_column_wins_and_nothing_repeats() {
        let config = choices(&["a.x"], &["a.t=timestamp", "a.n=numeric(10,2)"]);
        let flags = choices(&["a.x", "b.y"], &["a.t=timestamptz"]);
        let m = config.merged(&flags);
        assert_eq!(m.exclude_columns, vec!["a.x", "b.y"]);
        assert_eq!(m.types, vec!["a.n=numeric(10,2)", "a.t=timestamptz"]);
    }

    #[test]
    fn the_record_form_reads_back_and_old_records_have_none() {
        let c = choices(&["a.x"], &["a.t=timestamptz"]);
        assert_eq!(ColumnChoices::from_json(&c.to_json()), c);
        assert!(ColumnChoices::from_json("").is_empty());
    }
}
