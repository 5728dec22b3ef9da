//! Tables as ONTAP's `show` commands print them: a header, a line of dashes under each column,
//! one aligned row per entry, and "N entries were displayed." when there is more than one.

use serde_json::Value;

/// What ONTAP shows in place of an empty field.
pub const EMPTY: &str = "-";

/// What ONTAP prints when a `show` finds nothing.
pub const NO_ENTRIES: &str = "There are no entries matching your query.";

/// A JSON field as a table cell; "-" when absent or empty, as ONTAP shows it.
pub fn cell(value: &Value) -> String {
    match value {
        Value::String(text) if !text.is_empty() => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        _ => EMPTY.to_string(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are shown as empty fields, extra cells are dropped.
    pub fn push(&mut self, mut row: Vec<String>) {
        row.resize(self.headers.len(), EMPTY.to_string());
        self.rows.push(row);
    }

    /// Sorts rows by the cells of the given columns, keeping the order of equal rows.
    pub fn sort_by_columns(&mut self, columns: &[usize]) {
        self.rows.sort_by(|a, b| {
            let key = |row: &Vec<String>| -> Vec<String> {
                columns
                    .iter()
                    .map(|&c| row.get(c).cloned().unwrap_or_default())
                    .collect()
            };
            key(a).cmp(&key(b))
        });
    }

    /// The whole table, each line ending in a newline.
    pub fn render(&self) -> String {
        if self.rows.is_empty() {
            return format!("{NO_ENTRIES}\n");
        }
        let widths = self.widths();
        let dashes: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
        let headers: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        let mut out = line(&headers, &widths);
        out.push_str(&line(&dashes, &widths));
        for row in &self.rows {
            out.push_str(&line(row, &widths));
        }
        if self.rows.len() > 1 {
            // ONTAP leaves a blank line between the rows and the count.
            out.push_str(&format!("\n{} entries were displayed.\n", self.rows.len()));
        }
        out
    }

    /// ONTAP's `-instance` view: each entry as `Label: value` lines, the labels aligned on their
    /// colons, a blank line between entries.
    pub fn render_instances(&self) -> String {
        if self.rows.is_empty() {
            return format!("{NO_ENTRIES}\n");
        }
        let width = self.headers.iter().map(|h| h.len()).max().unwrap_or(0);
        let entries: Vec<String> = self
            .rows
            .iter()
            .map(|row| {
                self.headers
                    .iter()
                    .zip(row)
                    .map(|(label, value)| format!("{label:>width$}: {value}\n"))
                    .collect()
            })
            .collect();
        let mut out = entries.join("\n");
        if self.rows.len() > 1 {
            out.push_str(&format!("\n{} entries were displayed.\n", self.rows.len()));
        }
        out
    }

    /// Each column is as wide as its widest cell, header included.
    fn widths(&self) -> Vec<usize> {
        self.headers
            .iter()
            .enumerate()
            .map(|(i, header)| {
                self.rows
                    .iter()
                    .filter_map(|row| row.get(i))
                    .map(|cell| cell.chars().count())
                    .chain([header.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }
}

/// One line: cells padded to their column's width, one space apart, no trailing blanks.
fn line(cells: &[String], widths: &[usize]) -> String {
    let padded: Vec<String> = cells
        .iter()
        .zip(widths)
        .map(|(cell, &width)| format!("{cell:<width$}"))
        .collect();
    format!("{}\n", padded.join(" ").trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned_under_their_headers() {
        let mut table = Table::new(&["Vserver", "Key Server", "Timeout"]);
        table.push(vec![
            "vs1".into(),
            "ks1.example.com:5696".into(),
            "25".into(),
        ]);
        table.push(vec!["cluster-1".into(), "ks2:5696".into(), "-1".into()]);
        assert_eq!(
            table.render(),
            "Vserver   Key Server           Timeout\n\
             --------- -------------------- -------\n\
             vs1       ks1.example.com:5696 25\n\
             cluster-1 ks2:5696             -1\n\
             \n\
             2 entries were displayed.\n"
        );
    }

    #[test]
    fn one_entry_has_no_count_and_none_says_so() {
        let mut table = Table::new(&["Vserver"]);
        assert_eq!(table.render(), format!("{NO_ENTRIES}\n"));
        table.push(vec!["vs1".into()]);
        assert_eq!(table.render(), "Vserver\n-------\nvs1\n");
    }

    #[test]
    fn short_rows_are_filled_and_sorting_is_stable() {
        let mut table = Table::new(&["Node", "Key Server"]);
        table.push(vec!["node-2".into(), "a".into()]);
        table.push(vec!["node-1".into(), "b".into()]);
        table.push(vec!["node-1".into()]);
        table.sort_by_columns(&[0]);
        assert_eq!(
            table.render(),
            "Node   Key Server\n------ ----------\nnode-1 b\nnode-1 -\nnode-2 a\n\
             \n3 entries were displayed.\n"
        );
    }
}
