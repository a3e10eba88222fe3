//! Following tenants after a change until the controller is done with them:
//! `apply --wait` and `reconcile --wait` until every tenant is `active` at
//! the generation applied (or a system recorded an error at it: that system,
//! its reason and message end the wait, exit 1; the controller itself keeps
//! retrying), `delete --wait` until the tenant is gone. Polls `GET
//! /tenants/{slug}` with a deadline. On a terminal the display is live
//! (one line per tenant, redrawn); otherwise a plain line is printed
//! whenever a tenant's state changes, which reads well in CI logs.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use dezky_core::model::System;

use crate::client::Client;
use crate::error::CliError;
use crate::output::duration;
use crate::view::{parse, phase_name, Progress, TenantView};

/// How often the tenants are read while waiting.
const POLL: Duration = Duration::from_millis(500);

/// A tenant to follow and the generation it must reach.
#[derive(Clone, Debug)]
pub struct Target {
    pub slug: String,
    pub generation: i64,
}

/// Where a followed tenant stands, for the display.
struct Line {
    slug: String,
    text: String,
    done: bool,
}

/// Prints the lines: live on a terminal, as changes otherwise.
struct Display {
    live: bool,
    /// Lines drawn last time (live) / last printed text per tenant (plain).
    drawn: Vec<String>,
}

impl Display {
    fn new() -> Self {
        Display {
            live: std::io::stdout().is_terminal(),
            drawn: Vec::new(),
        }
    }

    fn show(&mut self, lines: &[Line]) {
        let texts: Vec<String> = lines
            .iter()
            .map(|l| format!("tenant/{}: {}", l.slug, l.text))
            .collect();
        let mut out = std::io::stdout().lock();
        if self.live {
            if !self.drawn.is_empty() {
                // Back to the first line of the block, then redraw it.
                let _ = write!(out, "\x1b[{}A", self.drawn.len());
            }
            for text in &texts {
                let _ = writeln!(out, "\x1b[2K{text}");
            }
        } else {
            for (i, text) in texts.iter().enumerate() {
                if self.drawn.get(i) != Some(text) {
                    let _ = writeln!(out, "{text}");
                }
            }
        }
        let _ = out.flush();
        self.drawn = texts;
    }
}

/// `authentik ok Created, stalwart pending WaitingForDomain, ocis -`.
fn systems_summary(tenant: &TenantView) -> String {
    System::ALL
        .iter()
        .map(|s| format!("{s} {}", tenant.system_cell(*s)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Follows `targets` until each is active at its generation; fails on the
/// first system error recorded at it, or when `limit` runs out.
pub async fn until_active(
    client: &Client,
    targets: &[Target],
    limit: Duration,
) -> Result<(), CliError> {
    let deadline = Instant::now() + limit;
    let mut display = Display::new();
    let mut lines: Vec<Line> = targets
        .iter()
        .map(|t| Line {
            slug: t.slug.clone(),
            text: "waiting".into(),
            done: false,
        })
        .collect();
    let mut failures = Vec::new();
    loop {
        for (target, line) in targets
            .iter()
            .zip(lines.iter_mut())
            .filter(|(_, l)| !l.done)
        {
            let Some(value) = client.tenant(&target.slug).await? else {
                line.text = "gone (deleted meanwhile)".into();
                line.done = true;
                failures.push(format!("tenant/{} no longer exists", target.slug));
                continue;
            };
            let tenant: TenantView = parse(&value, &format!("GET /tenants/{}", target.slug))?;
            let phase = phase_name(tenant.status.phase);
            match tenant.progress(target.generation) {
                Progress::Active => {
                    line.text = format!("active ({})", systems_summary(&tenant));
                    line.done = true;
                }
                Progress::Failed(systems) => {
                    line.done = true;
                    let why: Vec<String> = systems
                        .iter()
                        .map(|f| format!("{} error {}: {}", f.system, f.reason, f.message))
                        .collect();
                    line.text = format!("{phase}, failed: {}", why.join("; "));
                    failures.push(format!("tenant/{} failed: {}", target.slug, why.join("; ")));
                }
                Progress::Pending => line.text = format!("{phase} ({})", systems_summary(&tenant)),
            }
        }
        display.show(&lines);
        if lines.iter().all(|l| l.done) {
            break;
        }
        if Instant::now() >= deadline {
            let pending: Vec<String> = lines
                .iter()
                .filter(|l| !l.done)
                .map(|l| format!("tenant/{}: {}", l.slug, l.text))
                .collect();
            failures.push(format!(
                "not active after {}: {}",
                duration(limit),
                pending.join("; ")
            ));
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(failures.join("\n")))
    }
}

/// Follows a deleted tenant until its document is gone (cleanup done).
pub async fn until_gone(client: &Client, slug: &str, limit: Duration) -> Result<(), CliError> {
    let deadline = Instant::now() + limit;
    let mut display = Display::new();
    loop {
        let Some(value) = client.tenant(slug).await? else {
            display.show(&[Line {
                slug: slug.to_string(),
                text: "deleted".into(),
                done: true,
            }]);
            return Ok(());
        };
        let tenant: TenantView = parse(&value, &format!("GET /tenants/{slug}"))?;
        let text = format!("cleaning up ({})", systems_summary(&tenant));
        display.show(&[Line {
            slug: slug.to_string(),
            text: text.clone(),
            done: false,
        }]);
        if Instant::now() >= deadline {
            return Err(CliError::Failed(format!(
                "tenant/{slug} still exists after {}: {text}",
                duration(limit)
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}
