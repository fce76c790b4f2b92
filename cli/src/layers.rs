//! `kumo layer …`: publish, list, show and delete layer versions
//! (docs/wire-formats.md §13).

use kumo_proto::control::*;
use serde_json::{json, Value};

use crate::args::{LayerCommand, Output};
use crate::commands::CliError;
use crate::connect::Client;
use crate::output::{print_record, print_table};

/// The stable JSON shape of a layer version.
fn layer_json(info: &LayerVersionInfo) -> Value {
    let mut value = json!({
        "layer": info.layer_name,
        "version": info.version,
        "layer_version_arn": info.layer_version_arn,
        "description": info.description,
        "compatible_runtimes": info.compatible_runtimes,
        "license_info": info.license_info,
        "code_sha256": info.code_sha256,
        "code_size": info.code_size,
        "unzipped_size": info.unzipped_size,
        "created": info.created,
    });
    if !info.used_by.is_empty() {
        value["used_by"] = json!(info.used_by);
    }
    value
}

fn print_list(list: &[LayerVersionInfo], output: Output) {
    let rows: Vec<Value> = list.iter().map(layer_json).collect();
    print_table(
        &rows,
        &[
            ("LAYER", "layer"),
            ("VERSION", "version"),
            ("SIZE", "code_size"),
            ("CREATED", "created"),
            ("DESCRIPTION", "description"),
        ],
        output,
    );
}

/// `kumo layer …`.
pub async fn run(client: &mut Client, command: LayerCommand) -> Result<(), CliError> {
    match command {
        LayerCommand::Publish {
            name,
            code,
            description,
            compatible_runtimes,
            license_info,
            s3_profile,
            output,
        } => {
            let (zip, code_s3) = crate::package::source(&code, s3_profile.as_deref())?;
            let bar = crate::upload_progress::bar_for(zip.len(), &name);
            let request = crate::upload_progress::with_bar(
                PublishLayerVersionRequest {
                    layer_name: name,
                    description,
                    zip,
                    code_s3,
                    compatible_runtimes,
                    license_info,
                },
                bar,
            );
            let info = client.publish_layer_version(request).await?.into_inner();
            match output {
                Output::Json => print_record(&layer_json(&info), output),
                Output::Text => println!("{}", info.layer_version_arn),
            }
        }
        LayerCommand::List { name, output } => {
            let list = match name {
                Some(layer_name) => {
                    client
                        .list_layer_versions(ListLayerVersionsRequest { layer_name })
                        .await?
                        .into_inner()
                        .versions
                }
                None => {
                    client
                        .list_layers(ListLayersRequest {})
                        .await?
                        .into_inner()
                        .latest
                }
            };
            print_list(&list, output);
        }
        LayerCommand::Get { layer, output } => {
            let info = client
                .get_layer_version(GetLayerVersionRequest { layer, version: 0 })
                .await?
                .into_inner();
            print_record(&layer_json(&info), output);
        }
        LayerCommand::Delete { layer } => {
            client
                .delete_layer_version(DeleteLayerVersionRequest {
                    layer: layer.clone(),
                    version: 0,
                })
                .await?;
            println!("deleted {layer}");
        }
    }
    Ok(())
}
