//! Figures of the benchmark: latency percentiles, the rows of the final
//! summary table and how they are printed.

use std::time::Duration;

/// Percentiles of a set of durations.
#[derive(Clone, Copy, Debug)]
pub struct Percentiles {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Percentiles {
    /// Nearest-rank percentiles of `samples` (`None` when empty).
    pub fn of(samples: &[Duration]) -> Option<Self> {
        let mut sorted = samples.to_vec();
        sorted.sort();
        let rank = |q: f64| {
            let index = (q * sorted.len() as f64).ceil() as usize;
            sorted[index.clamp(1, sorted.len()) - 1]
        };
        (!sorted.is_empty()).then(|| Percentiles {
            count: sorted.len(),
            p50: rank(0.50),
            p99: rank(0.99),
            max: rank(1.0),
        })
    }

    /// `p50 1.2 ms, p99 3.4 ms, max 5.6 ms (n=200)`.
    pub fn describe(&self) -> String {
        format!(
            "p50 {}, p99 {}, max {} (n={})",
            ms(self.p50),
            ms(self.p99),
            ms(self.max),
            self.count
        )
    }
}

/// A duration in milliseconds with one decimal.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// One line of the summary: a figure, its value and what it was measured on.
pub struct Row {
    pub figure: String,
    pub value: String,
    pub setup: String,
}

/// The summary table, filled as the scenarios run.
#[derive(Default)]
pub struct Summary {
    rows: Vec<Row>,
}

impl Summary {
    /// Records a figure and prints it at once, so a partial run still shows it.
    pub fn add(
        &mut self,
        figure: impl Into<String>,
        value: impl Into<String>,
        setup: impl Into<String>,
    ) {
        let row = Row {
            figure: figure.into(),
            value: value.into(),
            setup: setup.into(),
        };
        println!("  {:<44} {}   [{}]", row.figure, row.value, row.setup);
        self.rows.push(row);
    }

    /// The table of every recorded figure.
    pub fn print(&self) {
        let width = |f: fn(&Row) -> &str, title: &str| {
            self.rows
                .iter()
                .map(|r| f(r).chars().count())
                .chain([title.len()])
                .max()
                .unwrap_or(0)
        };
        let (w1, w2) = (width(|r| &r.figure, "figure"), width(|r| &r.value, "value"));
        println!();
        println!("SUMMARY");
        println!("{:<w1$} | {:<w2$} | setup", "figure", "value");
        println!(
            "{}-+-{}-+-{}",
            "-".repeat(w1),
            "-".repeat(w2),
            "-".repeat(30)
        );
        for row in &self.rows {
            println!("{:<w1$} | {:<w2$} | {}", row.figure, row.value, row.setup);
        }
    }
}

/// Section heading of one scenario.
pub fn heading(title: &str) {
    println!();
    println!("== {title}");
}
