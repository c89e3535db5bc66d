//! The managed containers as `serve` shows them (`GET /v1/instances`, the web page's previews),
//! kept current from the engine's event stream instead of a container list per request: at 500
//! previews the engine's own list takes ~100 ms (issue 26), an event costs one inspect of the
//! container it names.
//!
//! The view is for display only: nothing is removed, repaired or deleted from it (prune and the
//! deploy look for themselves). It is current or it is not there: until the first list after a
//! (re)subscription has been read, and from the moment the stream fails, ends or an inspect
//! cannot answer, [`ContainerView::snapshot`] is `None` and the caller lists the engine as
//! before. The stream is subscribed from a moment before the list is read, so a change between
//! the two is replayed (looked at twice, never missed).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use crate::engine::{ContainerInfo, Containers, LABEL_MANAGED};
use crate::look::Look;

/// How long after a failed or ended stream the view subscribes again.
const RESUBSCRIBE: Duration = Duration::from_secs(1);

/// How often the view is listed afresh while its stream runs.
const RELIST: Duration = Duration::from_secs(300);

/// A subscription that lasted this long was a working one: the next starts soon again.
const STEADY: Duration = Duration::from_secs(10);

/// The longest pause between subscriptions that keep failing.
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// How far before the list the subscription replays (clock granularity of the engine's
/// `since`, seconds).
const REPLAY: Duration = Duration::from_secs(2);

/// Managed containers by id, or `None` while not current.
#[derive(Debug, Default)]
pub struct ContainerView {
    current: RefCell<Option<HashMap<String, ContainerInfo>>>,
    /// How many times it became current (a fresh list after a subscription); for tests and
    /// logs.
    generations: std::cell::Cell<u64>,
}

impl ContainerView {
    /// Every managed container, when the view is current.
    #[must_use]
    pub fn snapshot(&self) -> Option<Vec<ContainerInfo>> {
        self.current.borrow().as_ref().map(|m| {
            let mut all: Vec<ContainerInfo> = m.values().cloned().collect();
            all.sort_by(|a, b| a.name.cmp(&b.name));
            all
        })
    }

    /// How many times the view became current.
    #[must_use]
    pub fn generations(&self) -> u64 {
        self.generations.get()
    }

    fn set(&self, list: Vec<ContainerInfo>) {
        *self.current.borrow_mut() = Some(list.into_iter().map(|c| (c.id.clone(), c)).collect());
        self.generations.set(self.generations.get() + 1);
    }

    fn forget(&self) {
        *self.current.borrow_mut() = None;
    }

    /// Applies a fresh look at container `id`; false when the look failed (the view is then
    /// no longer current).
    fn apply(&self, id: &str, look: Look<ContainerInfo, crate::engine::RuntimeError>) -> bool {
        let mut current = self.current.borrow_mut();
        let Some(map) = current.as_mut() else { return true };
        match look {
            // Only ours: a container that lost the label (never, but cheap to say) leaves the view.
            Look::Found(c) if c.labels.get(LABEL_MANAGED).is_some_and(|v| v == "true") => {
                map.insert(id.to_owned(), c);
            }
            Look::Found(_) | Look::Absent => {
                map.remove(id);
            }
            Look::Unknown(_) => {
                *current = None;
                return false;
            }
        }
        true
    }

    /// Keeps the view current for as long as the task runs: subscribe, list, then one look per
    /// event (and a fresh list every five minutes); after a failure, forget the view and start
    /// again one to sixty seconds later.
    /// An engine that refuses events (a socket proxy) is asked again less and less often.
    pub async fn keep<R: Containers>(self: Rc<Self>, engine: &R) {
        let mut pause = RESUBSCRIBE;
        loop {
            let began = tokio::time::Instant::now();
            self.follow_once(engine).await;
            self.forget();
            pause = if began.elapsed() < STEADY { (pause * 2).min(MAX_PAUSE) } else { RESUBSCRIBE };
            tokio::time::sleep(pause).await;
        }
    }

    /// One subscription, until it fails or ends.
    async fn follow_once<R: Containers>(&self, engine: &R) {
        let since = SystemTime::now().checked_sub(REPLAY).unwrap_or(SystemTime::UNIX_EPOCH);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let watch = async move {
            // A send fails only when the applying side stopped, which ends this subscription.
            let mut on_change = |id: &str| drop(tx.send(id.to_owned()));
            engine.watch_managed(since, &mut on_change).await
        };
        let apply = async {
            let Ok(list) = engine.list_managed().await else { return };
            self.set(list);
            // A stream can stall without failing (a half-open connection to a remote engine),
            // and an engine drops events for a subscriber that falls far behind: a fresh list
            // now and then bounds how stale the view can be.
            let mut relist = tokio::time::interval_at(tokio::time::Instant::now() + RELIST, RELIST);
            loop {
                let id = tokio::select! {
                    id = rx.recv() => match id {
                        Some(id) => id,
                        None => return,
                    },
                    _ = relist.tick() => {
                        let Ok(list) = engine.list_managed().await else { return };
                        self.set(list);
                        continue;
                    }
                };
                // Events often come in bursts for one container (create, attach, start): one
                // look answers all that are already queued.
                let mut ids = vec![id];
                while let Ok(more) = rx.try_recv() {
                    if !ids.contains(&more) {
                        ids.push(more);
                    }
                }
                for id in ids {
                    if !self.apply(&id, engine.inspect(&id, "").await) {
                        return;
                    }
                }
            }
        };
        tokio::select! {
            _ = watch => {}
            () = apply => {}
        }
    }
}
