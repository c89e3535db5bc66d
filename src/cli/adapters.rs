//! The adapters a command that changes things runs with: the library builds them from the
//! config ([`tiny_forge::ops::Adapters`]); this adds where the state file is (`--state`) and,
//! in `test-hooks` builds, the pauses a test asks for.

use tiny_forge::config::Config;
use tiny_forge::ops::{Adapters, Notifications, StateAccess};

use super::{Ctx, Failure};

/// The adapters for `config`: the state path is settled first, then the library builds the
/// rest in its order (HTTP clients, secrets, engine, state file). Every problem is exit 2.
pub(crate) async fn build(
    ctx: &Ctx,
    config: &Config,
    notifications: Notifications,
    state: StateAccess,
) -> Result<Adapters, Failure> {
    let state_path = ctx.state_path(Some(config))?;
    let adapters = Adapters::build(config, &state_path, notifications, state).await.map_err(Failure::usage)?;
    #[cfg(feature = "test-hooks")]
    let adapters = adapters.with_pauses(test_pauses());
    Ok(adapters)
}

/// `TINY_FORGE_TEST_PAUSE_AFTER=step:duration[,step:duration…]` (`test-hooks` builds only):
/// pause after those steps (`rollback`: at its start), so that a test can interrupt or kill a
/// deploy at a known point.
#[cfg(feature = "test-hooks")]
fn test_pauses() -> Vec<(tiny_forge::report::Step, std::time::Duration)> {
    let Ok(v) = std::env::var(tiny_forge::env::TINY_FORGE_TEST_PAUSE_AFTER) else { return Vec::new() };
    v.split(',')
        .filter_map(|p| {
            let (step, dur) = p.split_once(':')?;
            Some((tiny_forge::report::Step::parse(step)?, humantime::parse_duration(dur).ok()?))
        })
        .collect()
}
