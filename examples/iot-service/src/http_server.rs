//! Serves `GET /api/database/events?id=N`: the latest events of device N as JSON; and, built
//! with the feature `heap-stats`, `GET /api/heap`: the heap held now and at most (see `heap`).

use std::collections::HashMap;

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use streambed_patterns::ask::Ask;
use tokio::sync::mpsc;

use crate::database::Command;

/// The service's HTTP routes.
pub fn routes(database: mpsc::Sender<Command>) -> Router {
    let router = Router::new().route("/api/database/events", get(events));
    #[cfg(feature = "heap-stats")]
    let router = router.route("/api/heap", get(|| async { Json(crate::heap::stats()) }));
    router.with_state(database)
}

async fn events(
    State(database): State<mpsc::Sender<Command>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(id) = query.get("id") else {
        return error(StatusCode::BAD_REQUEST, "an id is required");
    };
    let Ok(id) = id.parse() else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid id: it must be a whole number",
        );
    };
    match database.ask(|reply_to| Command::Get(id, reply_to)).await {
        Ok(events) => Json(events).into_response(),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unavailable",
        ),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}
