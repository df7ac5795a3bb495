//! A way in to the private API router for the fuzz targets under `fuzz/`, so that requests
//! reach the handlers without sockets; compiled only with the `fuzzing` feature so that
//! normal builds carry no extra public surface.

use streambed::commit_log::CommitLog;
use tokio::sync::watch;

use crate::{
    api,
    ops::Metrics,
    quota::{QuotaConfig, Quotas},
    ServerConfig,
};

/// The router `serve` puts behind each connection, without identities, quotas, provenance
/// or metrics (as [`serve`](crate::serve) runs it). Consumer streams end once `stopping`
/// turns `true`.
///
/// ```
/// use streambed_server::{fuzzing::router, memory::MemoryLog, ServerConfig};
///
/// let (_stop, stopping) = tokio::sync::watch::channel(false);
/// let router = router(MemoryLog::new(), &ServerConfig::default(), stopping);
/// # drop(router);
/// ```
pub fn router<CL>(log: CL, config: &ServerConfig, stopping: watch::Receiver<bool>) -> axum::Router
where
    CL: CommitLog + 'static,
{
    let guards = api::Guards {
        quotas: Quotas::new(QuotaConfig::unlimited()),
        provenance: None,
        metrics: Metrics::noop(),
        policy: None,
    };
    api::router(log, config, std::sync::Arc::new(guards), stopping)
}
