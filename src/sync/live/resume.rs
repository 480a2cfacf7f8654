//! Finding a live sync in the databases when the proxy starts, and carrying it on.
//!
//! Every configured backend is asked (bounded in time) for its identity and live sync
//! record. The newest record names its two databases by identity; they are matched to
//! configured backends whatever names or URLs the config uses now. Before the proxy
//! serves anyone, the route is reconciled with the record: the route file is the commit
//! point of a switch, so when it has one the sync's direction follows it; when it has
//! none (a new pod, a lost file) and the record carries a later switch, the route follows
//! the record. Then the sync resumes under this process's name. What cannot be resumed
//! blocks switches between those backends ([`super::slot`]) and is tried again every few
//! seconds.

use std::sync::Arc;
use std::time::Duration;

use super::record::{self, Found, Record};
use super::side::Side;
use super::slot::{Blocked, LiveSlot};
use super::{LiveSpec, LiveSync, StartMode};
use crate::backend::url::BackendUrl;
use crate::metrics::Metrics;
use crate::router::Router;
use crate::router::switch::Switcher;

/// How long one backend may take to answer at start-up.
const ASK_LIMIT: Duration = Duration::from_secs(5);

/// How often a sync that could not be resumed is tried again.
const RETRY_EVERY: Duration = Duration::from_secs(10);

/// What the proxy needs to resume a sync.
pub struct Context {
    pub router: Arc<Router>,
    pub switcher: Arc<Switcher>,
    pub slot: Arc<LiveSlot>,
    pub metrics: Metrics,
    pub lifecycle: crate::lifecycle::Lifecycle,
    /// The config's `[sync]` column choices.
    pub sync_choices: crate::sync::choices::ColumnChoices,
    /// In a fleet: the sync lease, taken before a sync is resumed (a member that cannot
    /// take it leaves the sync to the member that holds it). With it, the sync is
    /// resumed whatever the record's heartbeat says: the fleet's lease decided.
    pub lease: Option<Arc<dyn SyncLease>>,
}

/// Who may run a live sync when several proxies could (a fleet's sync lease).
pub trait SyncLease: Send + Sync {
    /// True when this proxy holds the lease now (taking it if free or expired).
    fn claim(&self) -> futures::future::BoxFuture<'_, bool>;
    /// Gives a lease taken for a sync that did not start back.
    fn release(&self) -> futures::future::BoxFuture<'_, ()>;
}

impl Context {
    /// What a running proxy resumes with.
    pub fn of(s: &crate::state::ProxyState) -> Context {
        Context {
            router: s.router.clone(),
            switcher: s.switcher.clone(),
            slot: s.live.clone(),
            metrics: s.metrics.clone(),
            lifecycle: s.lifecycle.clone(),
            sync_choices: s.resolved.config.sync.choices(),
            lease: s.fleet.clone().map(|f| f as Arc<dyn SyncLease>),
        }
    }
}

/// What one backend answered.
type Answer = (String, Result<Found, String>);

async fn ask(name: String, url: String) -> Answer {
    let found = async {
        let side = match BackendUrl::parse(&url)? {
            BackendUrl::Sqlite(p) if !p.exists() => return Ok(Found::default()),
            BackendUrl::Sqlite(p) => Side::Sqlite(p),
            BackendUrl::Postgres(t) => Side::Postgres(
                crate::sync::pgconn::connect(&t)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
        };
        record::find(&side).await.map_err(|e| e.to_string())
    };
    let r = tokio::time::timeout(ASK_LIMIT, found)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", ASK_LIMIT.as_secs())));
    (name, r)
}

async fn discover(router: &Router) -> Vec<Answer> {
    let asks = router
        .backends()
        .into_iter()
        .map(|b| ask(b.name.to_string(), b.config.effective_url()));
    futures::future::join_all(asks).await
}

/// A record to carry on, with its databases as configured backend names.
#[derive(Debug)]
struct Plan {
    record: Record,
    from: String,
    to: String,
}

impl Plan {
    fn source(&self) -> &str {
        if self.record.forward {
            &self.from
        } else {
            &self.to
        }
    }
}

/// The newest record among the answers, matched to backends; `None` when there is none
/// (or a stopped one whose databases are not all configured).
fn plan(answers: &[Answer]) -> Option<Result<Plan, Blocked>> {
    let record = answers
        .iter()
        .filter_map(|(_, f)| f.as_ref().ok()?.record.clone())
        .max_by(|x, y| {
            (x.epoch, -x.heartbeat_age)
                .partial_cmp(&(y.epoch, -y.heartbeat_age))
                .unwrap_or(std::cmp::Ordering::Equal)
        })?;
    let stopped = !record.phase.active();
    let name_of = |db: &str| {
        answers.iter().find_map(|(n, f)| {
            (f.as_ref().ok()?.identity.as_deref() == Some(db)).then(|| n.clone())
        })
    };
    let unreachable: Vec<String> = answers
        .iter()
        .filter_map(|(n, f)| f.as_ref().err().map(|e| format!("{n}: {e}")))
        .collect();
    match (name_of(&record.from_db), name_of(&record.to_db)) {
        (Some(from), Some(to)) => Some(Ok(Plan { record, from, to })),
        // A stopped sync is not resumed; its record only tells where the last switch
        // left the app, which needs both sides.
        _ if stopped => None,
        (from, _) => {
            let missing = if from.is_none() {
                &record.from_name
            } else {
                &record.to_name
            };
            let reason = if unreachable.is_empty() {
                format!(
                    "no configured backend is the database it called {missing:?}; add that database back to the config"
                )
            } else {
                format!(
                    "the database it called {missing:?} did not answer ({})",
                    unreachable.join("; ")
                )
            };
            Some(Err(Blocked {
                from: record.from_name.clone(),
                to: record.to_name.clone(),
                reason,
            }))
        }
    }
}

/// Before serving: reconciles the route with a recorded live sync and resumes it. Never
/// fails start-up; what cannot be done is reported and retried in the background.
pub async fn at_start(ctx: Context) {
    match attempt(&ctx, true).await {
        Ok(()) => {}
        Err(blocked) => {
            ctx.slot.block(blocked);
            let lifecycle = ctx.lifecycle.clone();
            lifecycle.spawn(keep_trying(ctx));
        }
    }
}

/// A fleet member taking over a sync whose leader's lease ran out (while serving).
pub async fn take_over(ctx: Context) {
    match attempt(&ctx, false).await {
        Ok(()) => {}
        Err(b) => {
            tracing::warn!(reason = %b.reason, "taking the fleet's live sync over failed; trying again at the next heartbeat")
        }
    }
}

async fn keep_trying(ctx: Context) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(RETRY_EVERY) => {}
            _ = ctx.lifecycle.stopped() => return,
        }
        if ctx.slot.current().is_some() || ctx.slot.blocked().is_none() {
            return;
        }
        match attempt(&ctx, false).await {
            Ok(()) => return,
            Err(b) => ctx.slot.block(b),
        }
    }
}

/// One try. `starting`: nobody is served yet, so the route may still move.
async fn attempt(ctx: &Context, starting: bool) -> Result<(), Blocked> {
    let answers = discover(&ctx.router).await;
    let Some(plan) = plan(&answers) else {
        ctx.slot.unblock();
        return Ok(());
    };
    let mut plan = plan?;
    let (from, to) = (plan.from.clone(), plan.to.clone());
    let blocked = |reason: String| Blocked {
        from: from.clone(),
        to: to.clone(),
        reason,
    };
    reconcile_route(ctx, &mut plan, starting).map_err(blocked)?;
    if !plan.record.phase.active() {
        // Stopped by the operator: not resumed (its capture, if still installed, keeps
        // any switch from leaving captured changes behind).
        ctx.slot.unblock();
        return Ok(());
    }
    let route = ctx.switcher.route();
    let owner = record::owner_name(&route.instance);
    let r = &plan.record;
    let same_instance = record::owner_instance(&r.owner) == route.instance;
    if !same_instance && r.heartbeat_age < super::OWNER_FRESH_SECS && ctx.lease.is_none() {
        return Err(blocked(format!(
            "it is being applied by another process ({}, last seen {:.0} s ago); this proxy takes over once that one stops",
            r.owner, r.heartbeat_age
        )));
    }
    let url = |name: &str| {
        ctx.router
            .get(name)
            .map(|b| b.config.effective_url())
            .unwrap_or_default()
    };
    let spec = LiveSpec {
        from_name: plan.from.clone(),
        from_url: url(&plan.from),
        to_name: plan.to.clone(),
        to_url: url(&plan.to),
        force: false,
        max_lag_rows: ctx.switcher.config.max_lag_rows,
        batch: 10_000,
        parallel: 2,
        // As started (the record keeps them), with what the config adds since.
        choices: ctx.sync_choices.merged(&plan.record.choices),
    };
    if let Some(lease) = &ctx.lease
        && !lease.claim().await
    {
        // Another member of the fleet runs it.
        return Ok(());
    }
    let live = LiveSync::start(
        spec,
        ctx.metrics.clone(),
        owner,
        StartMode::Resume(plan.record.clone()),
        &ctx.lifecycle,
    )
    .await;
    let live = match live {
        Ok(l) => l,
        Err(e) => {
            if let Some(lease) = &ctx.lease {
                lease.release().await;
            }
            return Err(blocked(format!("resuming it failed: {e}")));
        }
    };
    let (source, target) = live.direction();
    tracing::warn!(
        %source, %target, phase = ?plan.record.phase, previous_owner = %plan.record.owner,
        "live sync resumed from its record in the databases (the proxy restarted while it ran)"
    );
    ctx.metrics.sync_resumes.inc();
    ctx.slot.set_running(live);
    Ok(())
}

/// Makes the route and the sync's direction agree (the sync's source is where the app
/// writes).
fn reconcile_route(ctx: &Context, plan: &mut Plan, starting: bool) -> Result<(), String> {
    let active = ctx.router.active().name.to_string();
    let source = plan.source().to_string();
    if source == active {
        return Ok(());
    }
    let route = ctx.switcher.route();
    if route.epoch == 0 && plan.record.epoch > 0 {
        // No switch in the route file (a new pod, a lost file) but the databases saw one.
        if !starting {
            return Err(format!(
                "its record says the app writes to {source:?} (switch {}), but this proxy serves {active:?}; cut over to {source:?} to make them agree",
                plan.record.epoch
            ));
        }
        ctx.router.swap_to(&source);
        ctx.switcher.adopt_route(&source, plan.record.epoch)?;
        ctx.metrics.route_epoch.set(plan.record.epoch as i64);
        tracing::warn!(
            route = %source, config_active = %active, epoch = plan.record.epoch,
            "no switch in the route file, but live sync's record carries one: serving {source:?}, where the last switch left the app"
        );
        return Ok(());
    }
    // The route file is the commit point: a record that says otherwise was written by a
    // switch that did not commit (every change had been applied by then).
    tracing::warn!(
        recorded_source = %source, route = %active,
        "live sync's recorded direction disagrees with the route file; following the route"
    );
    plan.record.forward = active == plan.from;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::live::record::StoredPhase;

    fn rec(epoch: u64, forward: bool) -> Record {
        Record {
            from_name: "local".into(),
            to_name: "remote".into(),
            from_db: "A".into(),
            to_db: "B".into(),
            forward,
            phase: StoredPhase::Streaming,
            epoch,
            owner: "i/h/1".into(),
            heartbeat_age: 1.0,
            copied: true,
            choices: Default::default(),
        }
    }

    fn found(id: &str, r: Option<Record>) -> Result<Found, String> {
        Ok(Found {
            identity: Some(id.into()),
            record: r,
            changelog: true,
            pending: 0,
        })
    }

    #[test]
    fn matches_databases_by_identity_and_takes_the_newest_record() {
        let answers = vec![
            ("pg2".to_string(), found("B", Some(rec(3, false)))),
            ("pg1".to_string(), found("A", Some(rec(2, true)))),
        ];
        let p = plan(&answers).unwrap().unwrap();
        assert_eq!((p.from.as_str(), p.to.as_str()), ("pg1", "pg2"));
        assert_eq!(p.record.epoch, 3);
        assert_eq!(p.source(), "pg2");
    }

    #[test]
    fn a_stopped_sync_still_places_the_route_and_a_missing_side_blocks() {
        let mut stopped = rec(1, false);
        stopped.phase = StoredPhase::Stopped;
        let both = [
            ("a".to_string(), found("A", Some(stopped.clone()))),
            ("b".to_string(), found("B", None)),
        ];
        assert_eq!(plan(&both).unwrap().unwrap().source(), "b");
        assert!(plan(&[("a".to_string(), found("A", Some(stopped)))]).is_none());
        let b = plan(&[("a".to_string(), found("A", Some(rec(1, true))))])
            .unwrap()
            .unwrap_err();
        assert!(b.reason.contains("\"remote\""), "{}", b.reason);
        let b = plan(&[
            ("a".to_string(), found("A", Some(rec(1, true)))),
            ("b".to_string(), Err("connection refused".into())),
        ])
        .unwrap()
        .unwrap_err();
        assert!(b.reason.contains("connection refused"), "{}", b.reason);
    }
}
