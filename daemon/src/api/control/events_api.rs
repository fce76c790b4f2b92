//! Dead-letter and trigger calls of the control API.

use kumo_proto::control::*;
use tonic::{Request, Response, Status};

use super::{dead_letter_status, trigger_status, ControlService};
use crate::dispatch::async_queue::dead_letters;

impl ControlService {
    pub(super) async fn list_dead_letters_rpc(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        let name = request.into_inner().function_name;
        let letters = self.queue.dead_letters(&name).map_err(dead_letter_status)?;
        Ok(Response::new(ListDeadLettersResponse {
            dead_letters: letters.iter().map(dead_letters::to_proto).collect(),
        }))
    }

    pub(super) async fn get_dead_letter_rpc(
        &self,
        request: Request<GetDeadLetterRequest>,
    ) -> Result<Response<DeadLetter>, Status> {
        let request = request.into_inner();
        let letter = self
            .queue
            .dead_letter(&request.function_name, &request.id)
            .map_err(dead_letter_status)?;
        Ok(Response::new(dead_letters::to_proto(&letter)))
    }

    pub(super) async fn replay_dead_letters_rpc(
        &self,
        request: Request<ReplayDeadLettersRequest>,
    ) -> Result<Response<ReplayDeadLettersResponse>, Status> {
        let request = request.into_inner();
        let event_ids = self
            .queue
            .replay(&request.function_name, &request.ids, request.all)
            .await
            .map_err(dead_letter_status)?;
        Ok(Response::new(ReplayDeadLettersResponse { event_ids }))
    }

    pub(super) async fn purge_dead_letters_rpc(
        &self,
        request: Request<PurgeDeadLettersRequest>,
    ) -> Result<Response<PurgeDeadLettersResponse>, Status> {
        let name = request.into_inner().function_name;
        let purged = self.queue.purge(&name).await.map_err(dead_letter_status)?;
        Ok(Response::new(PurgeDeadLettersResponse { purged }))
    }

    pub(super) async fn create_trigger_rpc(
        &self,
        request: Request<CreateTriggerRequest>,
    ) -> Result<Response<TriggerInfo>, Status> {
        let info = self
            .triggers
            .create(request.into_inner())
            .await
            .map_err(trigger_status)?;
        Ok(Response::new(info))
    }

    pub(super) async fn get_trigger_rpc(
        &self,
        request: Request<GetTriggerRequest>,
    ) -> Result<Response<TriggerInfo>, Status> {
        let name = request.into_inner().name;
        let info = self.triggers.get(&name).map_err(trigger_status)?;
        Ok(Response::new(info))
    }

    pub(super) async fn list_triggers_rpc(
        &self,
        _request: Request<ListTriggersRequest>,
    ) -> Result<Response<ListTriggersResponse>, Status> {
        let triggers = self.triggers.list().map_err(trigger_status)?;
        Ok(Response::new(ListTriggersResponse { triggers }))
    }

    pub(super) async fn set_trigger_enabled_rpc(
        &self,
        request: Request<SetTriggerEnabledRequest>,
    ) -> Result<Response<TriggerInfo>, Status> {
        let request = request.into_inner();
        let info = self
            .triggers
            .set_enabled(&request.name, request.enabled)
            .map_err(trigger_status)?;
        Ok(Response::new(info))
    }

    pub(super) async fn delete_trigger_rpc(
        &self,
        request: Request<DeleteTriggerRequest>,
    ) -> Result<Response<DeleteTriggerResponse>, Status> {
        let name = request.into_inner().name;
        self.triggers.delete(&name).await.map_err(trigger_status)?;
        Ok(Response::new(DeleteTriggerResponse {}))
    }
}
