//! `POST /topics/<topic>`: appends a request's records to the log, all with one
//! `produce_all`, under the policy, the quotas and the provenance header, and writes the
//! request's audit line.
//!
//! The handler runs on every request a producer makes, so its future is kept small: the
//! request is taken apart and checked before anything awaits (see [`super::body`]).

use std::future::Future;

use axum::{
    extract::{rejection::PathRejection, Path, Request, State},
    http::StatusCode,
    response::Response,
};
use streambed::{
    commit_log::{CommitLog, ProduceAllError, Topic},
    kafka_api::{ProduceReply, ProduceRequest},
};

use super::{
    body::{json_response, parse_json, PendingBody},
    check_topic_name, path_error, ApiError, AppState, Sender,
};
use crate::{
    audit, client::ClientKey, ops::RefusalReason, policy::Permission, principal::Principal,
};

/// What a produce request did, for its audit line.
#[derive(Default)]
struct ProduceOutcome {
    topic: Option<Topic>,
    records: usize,
    appended: Option<(u64, u64)>,
}

/// What a produce request was admitted with, before its body is read.
struct Admitted {
    client: ClientKey,
    topic: Topic,
}

pub(super) fn produce<CL: CommitLog + 'static>(
    State(state): State<AppState<CL>>,
    path: Result<Path<Topic>, PathRejection>,
    request: Request,
) -> impl Future<Output = Result<Response, ApiError>> + Send {
    let (parts, body) = request.into_parts();
    let sender = Sender::of(&parts.extensions);
    let mut outcome = ProduceOutcome::default();
    let admitted = admit(&state, path, &parts.extensions, &sender, &mut outcome);
    let body = PendingBody::of(&parts, body);
    drop(parts);
    async move {
        let result = match admitted {
            Ok(admitted) => append(&state, admitted, &sender, body, &mut outcome).await,
            Err(refused) => Err(refused),
        };
        audit::produce(&audit::Produced {
            who: sender.who(),
            topic: outcome.topic.as_ref(),
            records: outcome.records,
            appended: outcome.appended,
            status: match &result {
                Ok(response) => response.status().as_u16(),
                Err(error) => error.status.as_u16(),
            },
        });
        result
    }
}

/// Charges the request to its client's rate and checks its topic and the permission to
/// produce to it: all that needs no body, so a refused request is answered without
/// waiting for one.
fn admit<CL>(
    state: &AppState<CL>,
    path: Result<Path<Topic>, PathRejection>,
    extensions: &axum::http::Extensions,
    sender: &Sender,
    outcome: &mut ProduceOutcome,
) -> Result<Admitted, ApiError> {
    let guards = &state.guards;
    let client = guards.admit(extensions)?;
    // Read as a `Topic` rather than a `String`: a short name is kept inline, unallocated.
    let Path(topic) = path.map_err(path_error)?;
    check_topic_name(&topic)?;
    // Noted before the permission check: a refused attempt is audited with its topic.
    outcome.topic = Some(topic.clone());
    guards.permit(sender.principal.as_ref(), Permission::Produce, &topic)?;
    Ok(Admitted { client, topic })
}

/// Appends the records of an admitted produce request, noting in `outcome` what it did.
async fn append<CL: CommitLog + 'static>(
    state: &AppState<CL>,
    Admitted { client, topic }: Admitted,
    sender: &Sender,
    body: PendingBody,
    outcome: &mut ProduceOutcome,
) -> Result<Response, ApiError> {
    let guards = &state.guards;
    let principal: Option<&Principal> = sender.principal.as_ref();
    let bytes = body
        .read(state.max_body_size, state.body_read_timeout)
        .await?;
    // Creating a topic is producing to one without records; only checked when the
    // principal lacks the permission, so granted producers pay no offsets lookup.
    if let Some(policy) = &guards.policy {
        if let Err(denied) = policy.check(principal, Permission::Create, &topic) {
            if state.log.offsets(topic.clone(), 0).await.is_none() {
                return Err(guards.forbidden(denied.to_string()));
            }
        }
    }
    let request: ProduceRequest = parse_json(&bytes)?;
    outcome.records = request.records.len();
    // Every record is checked before the first is appended: a bad request writes nothing.
    if let Some(stray) = request.records.iter().find(|r| r.topic != topic) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "record for topic {:?} posted to topic {:?}",
                stray.topic.as_str(),
                topic.as_str()
            ),
        ));
    }
    // Backends serve partition 0 only: another is the client's mistake, not a server failure.
    if let Some(stray) = request.records.iter().find(|r| r.partition != 0) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "record for partition {}; only partition 0 exists",
                stray.partition
            ),
        ));
    }
    if let Some(header) = &guards.provenance {
        header.check(&request.records).map_err(|forged| {
            guards.metrics.refused(RefusalReason::ForgedProvenance);
            ApiError::new(StatusCode::BAD_REQUEST, forged.to_string())
        })?;
    }
    let total = request.records.len();
    let mut creation = match total {
        0 => None,
        _ => guards
            .quotas
            .produce_to(&state.log, &topic, &client)
            .await
            .map_err(|refused| guards.over_quota(refused))?,
    };
    let mut records = request.records.into_owned();
    if let Some(header) = &guards.provenance {
        for record in &mut records {
            header.stamp(record, &client);
        }
    }
    // Value bytes for the metrics, taken before the log owns the records: in all, and
    // record by record in case only some are appended (a lone record needs no list).
    let all_bytes = records.iter().map(|r| r.value.len()).sum::<usize>();
    let sizes: Vec<usize> = match total {
        1 => Vec::new(),
        _ => records.iter().map(|r| r.value.len()).collect(),
    };
    let (offsets, failure) = match state.log.produce_all(records).await {
        Ok(offsets) => (offsets, None),
        Err(ProduceAllError { produced, error }) => (produced, Some(error)),
    };
    let bytes = match offsets.len() {
        n if n == total => all_bytes,
        n => sizes.iter().take(n).sum(),
    };
    if let (Some(first), Some(last)) = (offsets.first(), offsets.last()) {
        outcome.appended = Some((first.offset, last.offset));
    }
    guards.metrics.produced(offsets.len(), bytes);
    if let Some(error) = failure {
        if offsets.is_empty() {
            // Nothing appended: the topic was not created after all.
            if let Some(creation) = creation.take() {
                creation.cancel();
            }
        }
        log::error!(
            "{topic}: record {} of {total} not appended: {error}",
            offsets.len() + 1
        );
        let mut refusal = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "the commit log could not append record {} of {total}; the offsets \
                 listed were appended before it",
                offsets.len() + 1
            ),
        );
        refusal.reply.offsets = Some(offsets);
        return Err(refusal);
    }
    Ok(json_response(StatusCode::OK, &ProduceReply { offsets }))
}
