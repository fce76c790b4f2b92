//! `GetLogs`: history (unless a follower skips it), then (with follow) the
//! live feed: every log record as it is stored, including the parts of a
//! running invocation's log its agent sends while it runs.

use kumo_proto::control::*;
use tonic::{Request, Response, Status};

use super::{blocking, ControlService, LogStream};
use crate::state::logs::LogFilter;

impl ControlService {
    pub(super) async fn get_logs_rpc(
        &self,
        request: Request<GetLogsRequest>,
    ) -> Result<Response<LogStream>, Status> {
        let request = request.into_inner();
        let name = request.function_name.clone();
        let functions = self.functions.clone();
        blocking(move || functions.get_record(&name)).await?;
        // Subscribe before reading history so nothing falls in between.
        let mut live = request.follow.then(|| self.logs.subscribe());
        let filter = LogFilter {
            since_ms: request.since_unix_ms,
            request_id: (!request.request_id.is_empty()).then_some(request.request_id.clone()),
            version: (!request.version.is_empty()).then_some(request.version.clone()),
        };
        let history = if request.follow && request.skip_history {
            Vec::new()
        } else {
            // Off the async threads: the read first waits for the log
            // writer to store what is queued.
            let (logs, name, wanted) = (
                self.logs.clone(),
                request.function_name.clone(),
                filter.clone(),
            );
            tokio::task::spawn_blocking(move || logs.history(&name, &wanted))
                .await
                .map_err(|e| Status::internal(format!("task failed: {e}")))?
                .map_err(|e| Status::internal(e.to_string()))?
        };
        if let (Some(id), true, false) = (&filter.request_id, history.is_empty(), request.follow) {
            return Err(Status::not_found(format!(
                "no log of request {id} for function {} (unknown, or older than the log retention)",
                request.function_name
            )));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            let to_event = |r: &crate::state::store::LogRecord| LogEvent {
                timestamp_unix_ms: r.timestamp_ms,
                function_name: r.function.clone(),
                request_id: r.request_id.clone(),
                version: r.version.clone(),
                text: r.text.clone(),
            };
            for record in &history {
                if tx.send(Ok(to_event(record))).await.is_err() {
                    return;
                }
            }
            let Some(live) = live.as_mut() else {
                return;
            };
            loop {
                match live.recv().await {
                    Ok(record) => {
                        let wanted =
                            record.function == request.function_name && filter.matches(&record);
                        if wanted && tx.send(Ok(to_event(&record))).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        let note = LogEvent {
                            function_name: request.function_name.clone(),
                            text: format!(
                                "[kumo] follower fell behind; {missed} log records skipped\n"
                            ),
                            ..Default::default()
                        };
                        if tx.send(Ok(note)).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}
