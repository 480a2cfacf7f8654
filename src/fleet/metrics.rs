//! The fleet's Prometheus metrics, registered into the proxy's registry when `[fleet]`
//! is configured (a single sidecar has none of them).

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts};

/// Buckets for phase and acknowledgement times (seconds).
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Clone)]
pub struct FleetMetrics {
    /// Members by state (`alive`: lease current; `gone`: lease ran out).
    pub members: IntGaugeVec,
    /// The fleet's epoch as this member last read it.
    pub epoch: IntGauge,
    /// 1 while the store answers.
    pub store_up: IntGauge,
    /// Switches this member took part in, by role and outcome.
    pub switches: IntCounterVec,
    /// Coordinator: begin → every member acknowledged (`prepare`), data step and store
    /// commit (`commit`), commit → every member serving again (`resume`).
    pub phase_seconds: prometheus::HistogramVec,
    /// Member: prepare seen → acknowledged (its own drain).
    pub ack_seconds: Histogram,
    /// Per backend: the epoch its database was fenced at (0: not fenced).
    pub fenced_epoch: IntGaugeVec,
    /// Per backend: writes its fence has refused (a count kept in the database).
    pub fenced_refused: IntGaugeVec,
}

impl FleetMetrics {
    pub fn new(r: &prometheus::Registry) -> FleetMetrics {
        let members = IntGaugeVec::new(
            Opts::new("switchyard_fleet_members", "Fleet members by lease state"),
            &["state"],
        )
        .expect("valid metric");
        let epoch = IntGauge::new("switchyard_fleet_epoch", "The fleet's switch epoch")
            .expect("valid metric");
        let store_up = IntGauge::new(
            "switchyard_fleet_store_up",
            "1 while the fleet's store database answers this member",
        )
        .expect("valid metric");
        let switches = IntCounterVec::new(
            Opts::new(
                "switchyard_fleet_switches_total",
                "Fleet switches this member took part in",
            ),
            &["role", "outcome"],
        )
        .expect("valid metric");
        let phase_seconds = prometheus::HistogramVec::new(
            HistogramOpts::new(
                "switchyard_fleet_switch_phase_seconds",
                "Duration of each phase of a fleet switch this member coordinated",
            )
            .buckets(BUCKETS.to_vec()),
            &["phase"],
        )
        .expect("valid metric");
        let ack_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "switchyard_fleet_ack_seconds",
                "From seeing a fleet switch's prepare to acknowledging it (pause and drain)",
            )
            .buckets(BUCKETS.to_vec()),
        )
        .expect("valid metric");
        let fenced_epoch = IntGaugeVec::new(
            Opts::new(
                "switchyard_fleet_fenced_epoch",
                "The fleet epoch a backend's database was fenced at (0: it takes writes)",
            ),
            &["backend"],
        )
        .expect("valid metric");
        let fenced_refused = IntGaugeVec::new(
            Opts::new(
                "switchyard_fleet_fenced_writes_refused",
                "Writes a backend's fence has refused, as counted in its database",
            ),
            &["backend"],
        )
        .expect("valid metric");
        for c in [
            Box::new(members.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(epoch.clone()),
            Box::new(store_up.clone()),
            Box::new(switches.clone()),
            Box::new(phase_seconds.clone()),
            Box::new(ack_seconds.clone()),
            Box::new(fenced_epoch.clone()),
            Box::new(fenced_refused.clone()),
        ] {
            r.register(c).expect("metric registered once");
        }
        FleetMetrics {
            members,
            epoch,
            store_up,
            switches,
            phase_seconds,
            ack_seconds,
            fenced_epoch,
            fenced_refused,
        }
    }
}
