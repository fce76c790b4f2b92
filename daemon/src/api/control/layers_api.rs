//! Layer calls of the control API: every layer RPC is one
//! [`ControlService::layers_call`] over `state::layers`.

use kumo_proto::control::*;
use tonic::{Request, Response, Status};

use super::{blocking_with, function_status, ControlService};
use crate::state::layers::{LayerError, Layers};
use crate::state::packages::PackageError;

fn layer_status(err: LayerError) -> Status {
    match err {
        LayerError::Function(f) => function_status(f),
        LayerError::NotFound { .. } => Status::not_found(err.to_string()),
        LayerError::InUse { .. } => Status::failed_precondition(err.to_string()),
        LayerError::Invalid(_)
        | LayerError::Package(PackageError::Invalid(_) | PackageError::EntryPoint(_)) => {
            Status::invalid_argument(err.to_string())
        }
        LayerError::Package(_) | LayerError::Store(_) => Status::internal(err.to_string()),
    }
}

impl ControlService {
    /// Runs `work` on the layers off the async threads and answers with
    /// its result (layer errors mapped to statuses).
    async fn layers_call<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Layers) -> Result<T, LayerError> + Send + 'static,
    ) -> Result<Response<T>, Status> {
        let layers = self.layers.clone();
        blocking_with(move || work(&layers), layer_status)
            .await
            .map(Response::new)
    }

    pub(super) async fn publish_layer_version_rpc(
        &self,
        request: Request<PublishLayerVersionRequest>,
    ) -> Result<Response<LayerVersionInfo>, Status> {
        let mut request = request.into_inner();
        let zip = std::mem::take(&mut request.zip);
        request.zip = self.package_bytes(zip, request.code_s3.take()).await?;
        self.layers_call(move |l| l.publish(&request)).await
    }

    pub(super) async fn get_layer_version_rpc(
        &self,
        request: Request<GetLayerVersionRequest>,
    ) -> Result<Response<LayerVersionInfo>, Status> {
        let r = request.into_inner();
        self.layers_call(move |l| l.get(&r.layer, r.version)).await
    }

    pub(super) async fn list_layers_rpc(&self) -> Result<Response<ListLayersResponse>, Status> {
        self.layers_call(|l| {
            Ok(ListLayersResponse {
                latest: l.list_layers(None)?,
            })
        })
        .await
    }

    pub(super) async fn list_layer_versions_rpc(
        &self,
        request: Request<ListLayerVersionsRequest>,
    ) -> Result<Response<ListLayerVersionsResponse>, Status> {
        let name = request.into_inner().layer_name;
        self.layers_call(move |l| {
            Ok(ListLayerVersionsResponse {
                versions: l.list_versions(&name)?,
            })
        })
        .await
    }

    pub(super) async fn delete_layer_version_rpc(
        &self,
        request: Request<DeleteLayerVersionRequest>,
    ) -> Result<Response<DeleteLayerVersionResponse>, Status> {
        let r = request.into_inner();
        self.layers_call(move |l| l.delete(&r.layer, r.version))
            .await
            .map(|_| Response::new(DeleteLayerVersionResponse {}))
    }
}
