//! Plans: what `prune` would do to each stage ([`prune`]) and to the images nothing needs
//! ([`images`]), and what a deploy would do (`deploy --dry-run`, [`deploy`]), each read from the
//! engine, the proxy and the state file and nothing changed until a caller hands it to the one
//! executor.

mod deploy;
mod images;
mod prune;

pub use deploy::{DeployPlan, PlanError};
pub(super) use images::{DEFAULT_KEEP_IMAGES, image_actions};
pub use prune::{Action, Reason, StagePlan};
pub(super) use prune::{Seen, stage_plan};
