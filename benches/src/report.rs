//! Turns run records into the comparison table (Markdown) and the JSON result file: medians
//! over runs, "did not finish" for timed-out phases, ratios to BIRD. Formatting only.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::control::PhaseOutcome;
use crate::daemons::DaemonKind;
use crate::runner::{Figures, RunOutcome};
use crate::scenario::Scenario;

/// One run as stored in the JSON file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Scenario name.
    pub scenario: String,
    /// Daemon under test.
    pub daemon: DaemonKind,
    /// Run number, from 1.
    pub run: usize,
    /// What happened.
    pub outcome: RunOutcome,
}

/// A figure summarised over the runs of one scenario and daemon.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Summary {
    /// Median of the runs.
    Median(f64),
    /// At least one run timed out in this phase.
    DidNotFinish,
    /// Not measured (a run failed or an earlier phase did not finish).
    Missing,
}

impl Summary {
    fn value(self) -> Option<f64> {
        match self {
            Self::Median(value) => Some(value),
            Self::DidNotFinish | Self::Missing => None,
        }
    }

    fn show(self, decimals: usize) -> String {
        match self {
            Self::Median(value) => format!("{value:.decimals$}"),
            Self::DidNotFinish => "DNF".to_owned(),
            Self::Missing => "-".to_owned(),
        }
    }
}

/// Median of `values`; `None` for none.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    })
}

/// The summary of one scenario and daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Scenario name.
    pub scenario: String,
    /// Daemon under test.
    pub daemon: DaemonKind,
    /// Runs that completed.
    pub runs: usize,
    /// Seconds to full convergence.
    pub converge_seconds: Summary,
    /// Seconds to withdraw everything.
    pub withdraw_seconds: Summary,
    /// Peak resident set, MiB.
    pub peak_rss_mib: Summary,
    /// CPU seconds over both phases.
    pub cpu_seconds: Summary,
    /// Resident set growth per path, octets.
    pub bytes_per_path: Summary,
    /// CPU seconds of the load generator over both phases.
    pub load_generator_cpu_seconds: Summary,
    /// Sample check and error notes.
    pub note: String,
}

fn phase_seconds(outcome: Option<&PhaseOutcome>) -> Result<f64, Summary> {
    match outcome {
        Some(PhaseOutcome::Finished { seconds, .. }) => Ok(*seconds),
        Some(PhaseOutcome::TimedOut { .. }) => Err(Summary::DidNotFinish),
        None => Err(Summary::Missing),
    }
}

fn summarise(figures: &[&Figures], pick: impl Fn(&Figures) -> Result<f64, Summary>) -> Summary {
    let mut values = Vec::new();
    for figure in figures {
        match pick(figure) {
            Ok(value) => values.push(value),
            Err(summary) => return summary,
        }
    }
    median(&mut values).map_or(Summary::Missing, Summary::Median)
}

/// Summarises the records of one scenario and daemon.
pub fn row(scenario: &str, daemon: DaemonKind, records: &[RunRecord]) -> Row {
    let mine: Vec<&RunRecord> = records
        .iter()
        .filter(|record| record.scenario == scenario && record.daemon == daemon)
        .collect();
    let figures: Vec<&Figures> = mine
        .iter()
        .filter_map(|record| match &record.outcome {
            RunOutcome::Completed(figures) => Some(figures.as_ref()),
            RunOutcome::Failed { .. } => None,
        })
        .collect();
    let failure = mine.iter().find_map(|record| match &record.outcome {
        RunOutcome::Failed { reason } => Some(format!("run {} failed: {reason}", record.run)),
        RunOutcome::Completed(_) => None,
    });
    let mut notes = Vec::new();
    if let Some(failure) = failure {
        notes.push(failure);
    }
    for figure in &figures {
        if let PhaseOutcome::TimedOut {
            seconds,
            held,
            target,
            ..
        } = figure.converge
        {
            notes.push(format!(
                "DNF after {seconds:.0} s: {held} of {target} routes delivered"
            ));
        }
        if let Some(error) = &figure.sample_error {
            notes.push(format!("sample check FAILED {error}"));
        }
        if figure.reflected > 0 || figure.unknown > 0 {
            notes.push(format!(
                "{} reflected, {} unknown prefixes",
                figure.reflected, figure.unknown
            ));
        }
    }
    if notes.is_empty() {
        let samples: u64 = figures.iter().map(|figure| figure.samples_checked).sum();
        notes.push(format!("{samples} sample routes ok"));
    }
    notes.dedup();
    let usable = if mine.len() == figures.len() {
        figures.clone()
    } else {
        Vec::new()
    };
    let summary = |pick: &dyn Fn(&Figures) -> Result<f64, Summary>| {
        if usable.is_empty() {
            Summary::Missing
        } else {
            summarise(&usable, pick)
        }
    };
    Row {
        scenario: scenario.to_owned(),
        daemon,
        runs: figures.len(),
        converge_seconds: summary(&|figure| phase_seconds(Some(&figure.converge))),
        withdraw_seconds: summary(&|figure| {
            phase_seconds(figure.withdraw.as_ref()).map_err(|summary| {
                if matches!(figure.converge, PhaseOutcome::TimedOut { .. }) {
                    Summary::DidNotFinish
                } else {
                    summary
                }
            })
        }),
        peak_rss_mib: summary(&|figure| Ok(figure.peak_rss_kib as f64 / 1024.0)),
        cpu_seconds: summary(&|figure| Ok(figure.cpu_seconds)),
        bytes_per_path: summary(&|figure| figure.bytes_per_path.ok_or(Summary::DidNotFinish)),
        load_generator_cpu_seconds: summary(&|figure| Ok(figure.load_generator_cpu_seconds)),
        note: notes.join("; "),
    }
}

fn ratio(value: Summary, base: Option<Summary>) -> String {
    match (value.value(), base.and_then(Summary::value)) {
        (Some(value), Some(base)) if base > 0.0 => format!("{:.2}", value / base),
        _ if matches!(value, Summary::DidNotFinish) => "DNF".to_owned(),
        _ => "-".to_owned(),
    }
}

/// One line describing a scenario's shape.
pub fn describe(scenario: &Scenario) -> String {
    format!(
        "{}: {} peers, {} sender(s) x {} prefixes = {} paths, {} route deliveries to converge",
        scenario.name,
        scenario.peers,
        scenario.senders,
        scenario.prefixes_per_sender,
        scenario.total_prefixes(),
        scenario.total_deliveries(),
    )
}

/// The Markdown comparison table.
pub fn markdown(scenarios: &[Scenario], rows: &[Row]) -> String {
    let mut text = String::new();
    for scenario in scenarios {
        let _ = writeln!(text, "- {}", describe(scenario));
    }
    text.push('\n');
    text.push_str(
        "| scenario | daemon | runs | converge s | withdraw s | peak RSS MiB | CPU s | B/path \
         | converge xBIRD | withdraw xBIRD | RSS xBIRD | CPU xBIRD | loadgen CPU s | check |\n",
    );
    text.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for row in rows {
        let bird = rows
            .iter()
            .find(|other| other.scenario == row.scenario && other.daemon == DaemonKind::Bird);
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.scenario,
            row.daemon,
            row.runs,
            row.converge_seconds.show(3),
            row.withdraw_seconds.show(3),
            row.peak_rss_mib.show(1),
            row.cpu_seconds.show(2),
            row.bytes_per_path.show(0),
            ratio(row.converge_seconds, bird.map(|bird| bird.converge_seconds)),
            ratio(row.withdraw_seconds, bird.map(|bird| bird.withdraw_seconds)),
            ratio(row.peak_rss_mib, bird.map(|bird| bird.peak_rss_mib)),
            ratio(row.cpu_seconds, bird.map(|bird| bird.cpu_seconds)),
            row.load_generator_cpu_seconds.show(2),
            row.note.replace('|', "/"),
        );
    }
    text
}

/// The reload phase's table: per scenario and daemon, the median over the runs of the seconds
/// from triggering the reload to the last resulting UPDATE at the receivers, and of the
/// seconds the daemon itself reports.
pub fn reload_markdown(
    scenarios: &[Scenario],
    daemons: &[DaemonKind],
    records: &[RunRecord],
) -> String {
    let mut text = String::from(
        "| scenario | daemon | runs | prefixes withdrawn | reload s (to last UPDATE) \
         | reload s (daemon's own report) |\n|---|---|---|---:|---:|---:|\n",
    );
    for scenario in scenarios {
        for daemon in daemons {
            let reloads: Vec<&crate::runner::ReloadFigures> = records
                .iter()
                .filter(|record| record.scenario == scenario.name && record.daemon == *daemon)
                .filter_map(|record| match &record.outcome {
                    RunOutcome::Completed(figures) => figures.reload.as_ref(),
                    RunOutcome::Failed { .. } => None,
                })
                .collect();
            let mut seconds: Vec<f64> = reloads.iter().filter_map(|r| r.seconds).collect();
            let mut own: Vec<f64> = reloads.iter().filter_map(|r| r.daemon_seconds).collect();
            let show = |value: Option<f64>| value.map_or("-".to_owned(), |v| format!("{v:.3}"));
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} | {} | {} |",
                scenario.name,
                daemon,
                reloads.len(),
                reloads.first().map_or(0, |r| r.withdrawn),
                show(median(&mut seconds)),
                show(median(&mut own)),
            );
        }
    }
    text
}

/// The JSON API table: per scenario and request kind, over the runs that probed the API, the
/// median of the runs' medians and the extremes, in milliseconds, with the listing's size and
/// the answer's; then the load average at each probe and any probe failure.
pub fn api_markdown(scenarios: &[Scenario], records: &[RunRecord]) -> String {
    let mut text = String::from(
        "| scenario | daemon | request | routes in listing | routes in answer | answer KiB \
         | median ms | min ms | max ms | runs |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut notes = Vec::new();
    for scenario in scenarios {
        let mut kinds: Vec<(DaemonKind, Vec<&crate::api::ApiFigures>)> = Vec::new();
        for record in records
            .iter()
            .filter(|record| record.scenario == scenario.name)
        {
            let RunOutcome::Completed(figures) = &record.outcome else {
                continue;
            };
            if let Some(error) = &figures.api_error {
                notes.push(format!(
                    "- {} {} run {}: API probe FAILED: {error}",
                    scenario.name, record.daemon, record.run
                ));
            }
            let Some(api) = &figures.api else {
                continue;
            };
            notes.push(format!(
                "- {} {} run {}: load average {} ({} timed GETs per request)",
                scenario.name, record.daemon, record.run, api.load_average, api.requests
            ));
            match kinds
                .iter_mut()
                .find(|(daemon, _)| *daemon == record.daemon)
            {
                Some((_, list)) => list.push(api),
                None => kinds.push((record.daemon, vec![api])),
            }
        }
        for (daemon, runs) in kinds {
            let Some(first) = runs.first() else {
                continue;
            };
            for timing in &first.timings {
                let same: Vec<&crate::api::RequestTiming> = runs
                    .iter()
                    .filter_map(|run| run.timings.iter().find(|other| other.name == timing.name))
                    .collect();
                let mut medians: Vec<f64> = same.iter().map(|other| other.median_ms).collect();
                let min = same
                    .iter()
                    .map(|other| other.min_ms)
                    .fold(f64::INFINITY, f64::min);
                let max = same.iter().map(|other| other.max_ms).fold(0.0, f64::max);
                let _ = writeln!(
                    text,
                    "| {} | {} | {} | {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {} |",
                    scenario.name,
                    daemon,
                    timing.name,
                    timing.listing,
                    timing.routes,
                    timing.body_octets as f64 / 1024.0,
                    median(&mut medians).unwrap_or(0.0),
                    min,
                    max,
                    same.len(),
                );
            }
        }
    }
    if !notes.is_empty() {
        text.push('\n');
        text.push_str(&notes.join("\n"));
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(converge: PhaseOutcome, peak_rss_kib: u64) -> RunOutcome {
        RunOutcome::Completed(Box::new(Figures {
            connect_seconds: 0.1,
            withdraw: matches!(converge, PhaseOutcome::Finished { .. }).then_some(
                PhaseOutcome::Finished {
                    seconds: 1.0,
                    sent_seconds: None,
                },
            ),
            converge,
            rss_idle_kib: 1000,
            rss_converged_kib: 2000,
            peak_rss_kib,
            converge_cpu_seconds: 1.0,
            cpu_seconds: 2.0,
            paths: 1024,
            bytes_per_path: Some(1000.0),
            samples_checked: 4,
            sample_error: None,
            reflected: 0,
            unknown: 0,
            updates_received: 10,
            load_generator_cpu_seconds: 0.5,
            load_average: "0.00 0.00 0.00 1/100 1".to_owned(),
            reload: None,
            api: None,
            api_error: None,
        }))
    }

    fn record(daemon: DaemonKind, run: usize, outcome: RunOutcome) -> RunRecord {
        RunRecord {
            scenario: "small".to_owned(),
            daemon,
            run,
            outcome,
        }
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn a_timed_out_run_makes_the_pair_did_not_finish_and_ratios_follow() {
        let records = vec![
            record(
                DaemonKind::Bird,
                1,
                figures(
                    PhaseOutcome::Finished {
                        seconds: 2.0,
                        sent_seconds: None,
                    },
                    10240,
                ),
            ),
            record(
                DaemonKind::Bird,
                2,
                figures(
                    PhaseOutcome::Finished {
                        seconds: 4.0,
                        sent_seconds: None,
                    },
                    10240,
                ),
            ),
            record(
                DaemonKind::RouteServer,
                1,
                figures(
                    PhaseOutcome::Finished {
                        seconds: 1.0,
                        sent_seconds: None,
                    },
                    20480,
                ),
            ),
            record(
                DaemonKind::Gobgp,
                1,
                figures(
                    PhaseOutcome::TimedOut {
                        seconds: 120.0,
                        sent_seconds: None,
                        held: 5,
                        target: 10,
                    },
                    30720,
                ),
            ),
        ];
        let rows: Vec<Row> = [DaemonKind::Bird, DaemonKind::RouteServer, DaemonKind::Gobgp]
            .into_iter()
            .map(|daemon| row("small", daemon, &records))
            .collect();
        assert_eq!(rows[0].converge_seconds, Summary::Median(3.0));
        assert_eq!(rows[2].converge_seconds, Summary::DidNotFinish);
        assert_eq!(rows[2].withdraw_seconds, Summary::DidNotFinish);
        let table = markdown(&[Scenario::small()], &rows);
        assert!(table.contains("| small | route-server | 1 | 1.000 | 1.000 | 20.0 | 2.00 | 1000 | 0.33 | 1.00 | 2.00 | 1.00 | 0.50 |"), "{table}");
        assert!(
            table.contains("| small | gobgp | 1 | DNF | DNF |"),
            "{table}"
        );
        assert!(table.contains("5 of 10 routes delivered"), "{table}");
    }

    #[test]
    fn the_api_table_shows_the_median_of_the_runs_medians_and_probe_failures() {
        let timing = |median_ms: f64| crate::api::RequestTiming {
            name: "received last page (page 399, 250 per page)".to_owned(),
            path: "/api/v1/neighbors/peer10.ipv4/routes/received?page=399&page_size=250".into(),
            listing: 100_000,
            routes: 250,
            body_octets: 102_400,
            median_ms,
            min_ms: median_ms / 2.0,
            max_ms: median_ms * 2.0,
        };
        let probed = |run: usize, median_ms: f64, error: Option<&str>| {
            let mut outcome = figures(
                PhaseOutcome::Finished {
                    seconds: 1.0,
                    sent_seconds: None,
                },
                1024,
            );
            if let RunOutcome::Completed(figures) = &mut outcome {
                figures.api = error.is_none().then(|| crate::api::ApiFigures {
                    requests: 20,
                    timings: vec![timing(median_ms)],
                    load_average: "1.50 1.00 0.50 2/100 7".to_owned(),
                });
                figures.api_error = error.map(str::to_owned);
            }
            RunRecord {
                scenario: "api".to_owned(),
                daemon: DaemonKind::RouteServer,
                run,
                outcome,
            }
        };
        let records = vec![
            probed(1, 4.0, None),
            probed(2, 8.0, None),
            probed(3, 0.0, Some("page 399 holds 0 routes, not 250")),
        ];
        let table = api_markdown(&[Scenario::api()], &records);
        assert!(
            table.contains("| api | route-server | received last page (page 399, 250 per page) | 100000 | 250 | 100.0 | 6.00 | 2.00 | 16.00 | 2 |"),
            "{table}"
        );
        assert!(table.contains("run 1: load average 1.50"), "{table}");
        assert!(
            table.contains("run 3: API probe FAILED: page 399 holds 0 routes"),
            "{table}"
        );
    }
}
