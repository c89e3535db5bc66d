//! The three renderers of deploy events (`tty`, `plain`, `json`) and the final result.
//! Progress goes to stderr; data (the URL, JSON lines) to stdout.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write as _;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tiny_forge::fmt::millis as fmt_ms;
use tiny_forge::ops::{CommandResult, ResultLine};
use tiny_forge::report::{Event, Level, Reporter, Step};

pub(crate) use tiny_forge::fmt::rfc3339;

/// Timestamped lines on stderr, for CI logs. By default one line per finished step (step,
/// duration, the one fact that matters: the digest, the container, the probes, the URL), and
/// warnings, errors and undo steps in full; with `-v`, every event.
pub(crate) struct Plain {
    verbose: bool,
    /// The last informational line of each step: its fact.
    facts: RefCell<HashMap<Step, String>>,
}

impl Plain {
    /// One line per finished step.
    pub(crate) fn quiet() -> Self {
        Self { verbose: false, facts: RefCell::new(HashMap::new()) }
    }

    /// Every event.
    pub(crate) fn verbose() -> Self {
        Self { verbose: true, facts: RefCell::new(HashMap::new()) }
    }

    fn line(ts_ms: i64, level: Level, step: Step, message: &str) {
        let line = format!("{} {:<5} {:<8} {message}\n", rfc3339(ts_ms), level.as_str(), step.as_str());
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

impl Reporter for Plain {
    fn report(&self, ts_ms: i64, event: &Event) {
        if matches!(event, Event::PullProgress { .. }) {
            return;
        }
        if self.verbose {
            Self::line(ts_ms, event.level(), event.step(), &event.message());
            return;
        }
        match event {
            Event::StepStarted { .. } | Event::Log { level: Level::Debug, .. } => {}
            Event::Log { step, level: Level::Info, message } => {
                self.facts.borrow_mut().insert(*step, message.clone());
            }
            Event::StepFinished { step, elapsed_ms } => {
                let fact = self.facts.borrow_mut().remove(step);
                let done = format!("done in {}", fmt_ms(*elapsed_ms));
                let message = fact.map_or_else(|| done.clone(), |f| format!("{done}: {f}"));
                Self::line(ts_ms, Level::Info, *step, &message);
            }
            other => Self::line(ts_ms, other.level(), other.step(), &other.message()),
        }
    }
}

/// One JSON object per line on stdout: the event's fields, its `type`, and `ts`.
pub(crate) struct Json;

impl Reporter for Json {
    fn report(&self, ts_ms: i64, event: &Event) {
        if matches!(event, Event::PullProgress { current: None, .. }) {
            return;
        }
        let line = EventLine { event, ts: rfc3339(ts_ms) };
        if let Ok(text) = serde_json::to_string(&line) {
            let _ = writeln!(std::io::stdout().lock(), "{text}");
        }
    }
}

/// An event as `--output json` prints it: `type`, the event's fields, and `ts` (RFC 3339).
#[derive(serde::Serialize)]
struct EventLine<'a> {
    #[serde(flatten)]
    event: &'a Event,
    ts: String,
}

/// Spinners, one per step, on stderr.
pub(crate) struct Tty {
    multi: MultiProgress,
    bars: RefCell<HashMap<Step, ProgressBar>>,
    layers: RefCell<HashMap<String, (u64, u64)>>,
    colour: bool,
}

impl Tty {
    pub(crate) fn new(colour: bool) -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: RefCell::new(HashMap::new()),
            layers: RefCell::new(HashMap::new()),
            colour,
        }
    }

    fn style(&self) -> ProgressStyle {
        let t = if self.colour {
            "{spinner:.cyan} {prefix:<8.bold} {msg} {elapsed:.dim}"
        } else {
            "{spinner} {prefix:<8} {msg} {elapsed}"
        };
        ProgressStyle::with_template(t).unwrap_or_else(|_| ProgressStyle::default_spinner())
    }

    fn done(&self, step: Step, mark: &str, msg: String) {
        if let Some(bar) = self.bars.borrow_mut().remove(&step) {
            let style =
                ProgressStyle::with_template("{prefix} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.set_prefix(format!("{mark} {:<8}", step.as_str()));
            bar.finish_with_message(msg);
        }
    }
}

impl Reporter for Tty {
    fn report(&self, _: i64, event: &Event) {
        match event {
            Event::StepStarted { step } => {
                let bar = self.multi.add(ProgressBar::new_spinner().with_style(self.style()));
                bar.set_prefix(step.as_str());
                bar.enable_steady_tick(Duration::from_millis(100));
                self.bars.borrow_mut().insert(*step, bar);
            }
            Event::StepFinished { step, elapsed_ms } => self.done(*step, "✓", fmt_ms(*elapsed_ms)),
            Event::StepFailed { step, error, .. } => self.done(*step, "✗", error.clone()),
            Event::PullProgress { layer, current, total, .. } => {
                if let (Some(c), Some(t)) = (current, total) {
                    let mut layers = self.layers.borrow_mut();
                    layers.insert(layer.clone(), (*c, *t));
                    let (done, all) = layers.values().fold((0, 0), |(a, b), (c, t)| (a + c, b + t));
                    if let Some(bar) = self.bars.borrow().get(&Step::Pull) {
                        // The spinner becomes a byte progress bar once sizes are known.
                        if bar.length().is_none() {
                            let t = if self.colour {
                                "{spinner:.cyan} {prefix:<8.bold} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {elapsed:.dim}"
                            } else {
                                "{spinner} {prefix:<8} [{bar:30}] {bytes}/{total_bytes} {elapsed}"
                            };
                            if let Ok(style) = ProgressStyle::with_template(t) {
                                bar.set_style(style.progress_chars("=> "));
                            }
                        }
                        bar.set_length(all);
                        bar.set_position(done);
                    }
                }
            }
            Event::Log { step, level, message } => {
                if *level >= Level::Warn {
                    let _ = self.multi.println(format!("  {level}: {message}"));
                } else if let Some(bar) = self.bars.borrow().get(step) {
                    bar.set_message(message.clone());
                }
            }
            Event::Compensation { .. } => {
                let _ = self.multi.println(format!("  {}", event.message()));
            }
            Event::DeployStarted { .. } => {}
        }
    }
}

/// The final lines of a deploy, rollback or removal, from its result (the same whether the
/// deploy ran here or on a server): with `json`, the result line on stdout; else the URL (or what
/// was removed) on stdout and a summary on stderr.
pub(crate) fn result(r: &CommandResult, json: bool, quiet: bool) {
    if json {
        // Typed to the print: `type`, `exit_code`, then the result's own fields.
        if let Ok(line) = serde_json::to_string(&ResultLine::from(r.clone())) {
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
        return;
    }
    let leftovers: Vec<String> = r.leftovers().iter().map(ToString::to_string).collect();
    let mut err = std::io::stderr().lock();
    let left_behind = |err: &mut std::io::StderrLock<'_>, indent: &str| {
        for l in &leftovers {
            let _ = writeln!(err, "{indent}{l}");
        }
        let _ = writeln!(err, "run `tiny-forge prune` to finish the cleanup");
    };
    match r {
        CommandResult::Removed(rm) | CommandResult::Incomplete(rm) => {
            if rm.deploy_id.is_none() {
                if !quiet {
                    let _ = writeln!(err, "{} has no instance; nothing to remove", rm.slot);
                }
                return;
            }
            for line in &rm.removed {
                let _ = writeln!(std::io::stdout().lock(), "removed {line}");
            }
            if !leftovers.is_empty() {
                left_behind(&mut err, "left behind: ");
            }
        }
        CommandResult::Succeeded(d) => {
            if !quiet {
                let took = fmt_ms(d.duration_ms.unwrap_or(0));
                let container = d.container.clone().unwrap_or_else(|| "the instance".into());
                let what = if d.unchanged { "already running" } else { "deployed" };
                let _ = writeln!(err, "{what} {container} in {took} (deploy {})", d.deploy_id);
            }
            // Always, even with -q: they are why the exit code is 3.
            if !leftovers.is_empty() {
                let _ = writeln!(err, "live, but what it replaced was not all cleaned up; left behind:");
                left_behind(&mut err, "  - ");
            }
            let _ = writeln!(std::io::stdout().lock(), "{}", d.url.clone().unwrap_or_default());
        }
        CommandResult::Skipped(s) => {
            if !quiet {
                let _ = writeln!(err, "{}: {}", s.slot, s.error);
            }
        }
        CommandResult::Failed(f) | CommandResult::Interrupted(f) => {
            let status = if matches!(r, CommandResult::Interrupted(_)) { "interrupted" } else { "failed" };
            let _ = writeln!(err, "error: deploy {} {status}: {}", f.deploy_id, f.error.clone().unwrap_or_default());
            if leftovers.is_empty() {
                let _ = writeln!(err, "rolled back: nothing was left behind");
            } else {
                let _ = writeln!(err, "rollback incomplete; left behind:");
                left_behind(&mut err, "  - ");
            }
        }
    }
}
