//! Fakes of the engine and the proxy, for the saga's unit tests and the contract suite
//! (`tests/contract/`), which runs the same behaviour against these and the real adapters, so a
//! fake cannot drift from the real thing unnoticed. Compiled for tests and with the `fakes`
//! feature only (which the integration tests turn on; release builds never have it).
//!
//! Each fake records its calls and can be told to fail one operation in a [`Mode`]:
//! [`runtime`] is the engine, [`proxy`] the proxy.

#![allow(clippy::missing_panics_doc, reason = "test support: a poisoned fake may panic")]

mod proxy;
mod runtime;

use std::cell::RefCell;
use std::time::Duration;

pub use proxy::{FakeHost, FakeProxy};
pub use runtime::{FakeContainer, FakeRuntime, FakeService, SwarmBehaviour};

/// How a fake fails an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answers an error at once; nothing is changed.
    Error,
    /// Waits as a client timeout would (10 s, on tokio's clock), then answers that it timed
    /// out; nothing is changed.
    Timeout,
    /// Never answers.
    Hang,
    /// Makes the change, then loses the answer: waits as [`Mode::Timeout`] and answers that it
    /// timed out (the remote did it anyway).
    ActThenFail,
}

/// How long [`Mode::Timeout`] and [`Mode::ActThenFail`] wait before answering.
pub const FAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// One failure to inject: after `skip` calls that work, `op` fails in `mode`, `times` times
/// (then works again).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fault {
    op: &'static str,
    mode: Mode,
    skip: u32,
    times: u32,
}

#[derive(Debug, Default)]
pub(crate) struct Faults(RefCell<Vec<Fault>>);

impl Faults {
    pub(crate) fn set(&self, op: &'static str, mode: Mode, skip: u32, times: u32) {
        self.0.borrow_mut().push(Fault { op, mode, skip, times });
    }

    pub(crate) fn clear(&self) {
        self.0.borrow_mut().clear();
    }

    /// The mode `op` fails in now, if any (consumes one of its times).
    pub(crate) fn take(&self, op: &str) -> Option<Mode> {
        let mut faults = self.0.borrow_mut();
        let i = faults.iter().position(|f| f.op == op && f.times > 0)?;
        if faults[i].skip > 0 {
            faults[i].skip -= 1;
            return None;
        }
        faults[i].times -= 1;
        Some(faults[i].mode)
    }
}

/// What went wrong, before or after acting.
pub(crate) enum Injected {
    Error,
    TimedOut,
}

/// Applies `mode` around an operation: `Err` before acting (`Error`, `Timeout`, `Hang`), or
/// `Ok(Some(TimedOut))` meaning "act, then answer that it timed out".
pub(crate) async fn before(mode: Option<Mode>) -> Result<Option<Injected>, Injected> {
    match mode {
        None => Ok(None),
        Some(Mode::Error) => Err(Injected::Error),
        Some(Mode::Timeout) => {
            tokio::time::sleep(FAKE_TIMEOUT).await;
            Err(Injected::TimedOut)
        }
        Some(Mode::Hang) => std::future::pending().await,
        Some(Mode::ActThenFail) => Ok(Some(Injected::TimedOut)),
    }
}
