//! Multi-row INSERTs: one statement, so one round trip to the database, for many rows rather
//! than one per row (a job's result has dozens of metric and per-image rows).

/// Bound parameters per statement: under SQLite's oldest limit (999), so any build accepts it.
const MAX_PARAMS: usize = 999;

/// Rows of `cols` parameters that fit one statement.
pub(super) fn rows_per_statement(cols: usize) -> usize {
    (MAX_PARAMS / cols.max(1)).max(1)
}

/// The `VALUES` list for `rows` rows of `cols` parameters each, numbered from `$first`:
/// `values_rows(2, 2, 1)` is `($1, $2), ($3, $4)`. Bind the values row by row.
pub(super) fn values_rows(rows: usize, cols: usize, first: usize) -> String {
    (0..rows)
        .map(|r| {
            let params: Vec<String> = (0..cols)
                .map(|c| format!("${}", first + r * cols + c))
                .collect();
            format!("({})", params.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_numbered_consecutively_from_the_first_parameter() {
        assert_eq!(values_rows(2, 2, 1), "($1, $2), ($3, $4)");
        assert_eq!(values_rows(2, 4, 2), "($2, $3, $4, $5), ($6, $7, $8, $9)");
        assert_eq!(values_rows(1, 1, 7), "($7)");
    }

    #[test]
    fn a_full_statement_stays_within_the_parameter_limit() {
        for cols in 1..=20 {
            let rows = rows_per_statement(cols);
            assert!(rows * cols <= MAX_PARAMS && (rows + 1) * cols > MAX_PARAMS);
        }
    }
}
