//! Layers over the in-memory store and a real blob directory.

use std::io::Write;

use kumo_proto::control::{
    FunctionConfig, PublishLayerVersionRequest, UpdateFunctionConfigurationRequest,
};

use super::*;
use crate::state::versions::Versions;

const ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:layer";

/// A ZIP of `(name, unix mode, body)` entries.
fn zip(entries: &[(&str, u32, &str)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    for (name, mode, body) in entries {
        let options = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
        zip.start_file(*name, options).unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    out.into_inner()
}

fn parts(dir: &std::path::Path) -> (Functions, Layers) {
    let functions = crate::state::functions::tests::functions(dir);
    (functions.clone(), Layers::new(functions))
}

fn publish(layers: &Layers, name: &str, body: &str) -> LayerVersionInfo {
    layers
        .publish(&PublishLayerVersionRequest {
            layer_name: name.into(),
            description: format!("{name} layer"),
            zip: zip(&[("python/lib.py", 0o644, body)]),
            compatible_runtimes: vec!["python3.11".into(), "python3.12".into()],
            ..Default::default()
        })
        .unwrap()
}

fn function(name: &str, runtime: &str, layers: &[&str]) -> FunctionConfig {
    FunctionConfig {
        name: name.into(),
        runtime: runtime.into(),
        handler: "app.handler".into(),
        layers: layers.iter().map(|l| l.to_string()).collect(),
        ..Default::default()
    }
}

#[test]
fn versions_count_up_and_describe_their_package() {
    let dir = tempfile::tempdir().unwrap();
    let (_, layers) = parts(dir.path());
    let first = publish(&layers, "libs", "A = 1");
    let second = publish(&layers, "libs", "A = 2");
    assert_eq!((first.version, second.version), (1, 2));
    assert_eq!(second.layer_arn, format!("{ARN}:libs"));
    assert_eq!(second.layer_version_arn, format!("{ARN}:libs:2"));
    assert_eq!(second.compatible_runtimes, ["python3.11", "python3.12"]);
    assert_eq!(second.unzipped_size, 5);
    assert_eq!(second.package_digest.len(), 64);
    let got = layers.get(&format!("{ARN}:libs:1"), 0).unwrap();
    assert_eq!(got.code_sha256, first.code_sha256);
    assert_eq!(
        layers.get("libs", 2).unwrap().code_sha256,
        second.code_sha256
    );
    let listed: Vec<u64> = layers
        .list_versions("libs")
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(listed, [1, 2]);
    publish(&layers, "other", "B = 1");
    let latest: Vec<(String, u64)> = layers
        .list_layers(None)
        .unwrap()
        .into_iter()
        .map(|l| (l.layer_name, l.version))
        .collect();
    assert_eq!(latest, [("libs".into(), 2), ("other".into(), 1)]);
    assert!(layers.list_versions("nothing").unwrap().is_empty());
}

#[test]
fn bad_publishes_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (_, layers) = parts(dir.path());
    let good = PublishLayerVersionRequest {
        layer_name: "libs".into(),
        zip: zip(&[("python/x.py", 0o644, "")]),
        ..Default::default()
    };
    let refused = |change: &dyn Fn(&mut PublishLayerVersionRequest)| {
        let mut request = good.clone();
        change(&mut request);
        layers.publish(&request).unwrap_err().to_string()
    };
    assert!(refused(&|r| r.layer_name = "a/b".into()).contains("layer_name"));
    assert!(refused(&|r| r.zip = b"not a zip".to_vec()).contains("not a valid zip"));
    assert!(refused(&|r| r.zip = Vec::new()).contains("ZIP"));
    assert!(refused(&|r| r.zip = zip(&[("../evil", 0o644, "x")])).contains("invalid package"));
    assert!(
        refused(&|r| r.compatible_runtimes = vec!["cobol".into()]).contains("compatible_runtimes")
    );
    assert!(refused(&|r| r.description = "x".repeat(257)).contains("description"));
    assert!(
        layers.list_layers(None).unwrap().is_empty(),
        "nothing was stored"
    );
}

#[test]
fn functions_list_layers_by_arn_and_in_use_versions_stay() {
    let dir = tempfile::tempdir().unwrap();
    let (functions, layers) = parts(dir.path());
    let versions = Versions::new(functions.clone());
    publish(&layers, "libs", "A = 1");
    publish(&layers, "more", "B = 1");
    let info = functions
        .create(
            function("f", "python3.11", &["libs:1", &format!("{ARN}:more:1")]),
            &zip(&[("app.py", 0o644, "")]),
        )
        .unwrap();
    let arns: Vec<&str> = info.layers.iter().map(|l| l.arn.as_str()).collect();
    assert_eq!(arns, [format!("{ARN}:libs:1"), format!("{ARN}:more:1")]);
    assert_eq!(info.config.unwrap().layers, arns);
    let err = layers.delete("libs", 1).unwrap_err();
    assert!(matches!(err, LayerError::InUse { .. }), "{err}");
    assert!(err.to_string().contains("used by f"), "{err}");
    versions
        .publish(&kumo_proto::control::PublishVersionRequest {
            function_name: "f".into(),
            ..Default::default()
        })
        .unwrap();
    functions
        .update_configuration(UpdateFunctionConfigurationRequest {
            name: "f".into(),
            set_layers: true,
            layers: vec!["more:1".into()],
            ..Default::default()
        })
        .unwrap();
    let err = layers.delete(&format!("{ARN}:libs:1"), 0).unwrap_err();
    assert!(err.to_string().contains("used by f:1"), "{err}");
    assert_eq!(layers.get("libs:1", 0).unwrap().used_by, ["f:1"]);
    functions.delete("f").unwrap();
    let digest = layers.get("libs:1", 0).unwrap().package_digest;
    layers.delete("libs", 1).unwrap();
    assert!(matches!(
        layers.get("libs", 1).unwrap_err(),
        LayerError::NotFound { .. }
    ));
    assert!(
        functions.packages().get(&digest).is_err(),
        "the unused blob is collected"
    );
    assert_eq!(publish(&layers, "libs", "A = 3").version, 2, "never reused");
}

#[test]
fn unknown_foreign_and_too_many_layers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (functions, layers) = parts(dir.path());
    for i in 1..=6 {
        publish(&layers, &format!("l{i}"), "x");
    }
    let package = zip(&[("app.py", 0o644, "")]);
    let create = |layers: &[&str]| {
        functions
            .create(function("f", "python3", layers), &package)
            .unwrap_err()
            .to_string()
    };
    assert!(create(&["l1:2"]).contains("l1:2 does not exist"));
    assert!(
        create(&["arn:aws:lambda:us-east-1:123456789012:layer:l1:1"]).contains("does not exist")
    );
    assert!(
        create(&["arn:aws:lambda:eu-west-1:999999999999:layer:l1:1"]).contains("does not exist")
    );
    assert!(create(&["l1:1", "l2:1", "l3:1", "l4:1", "l5:1", "l6:1"]).contains("at most 5"));
    assert!(create(&["l1"]).contains("layer version ARN"));
    assert!(functions.list().unwrap().is_empty(), "nothing was created");
    assert!(matches!(
        layers.get("arn:aws:lambda:us-east-1:123456789012:layer:l1:1", 0),
        Err(LayerError::NotFound { .. })
    ));
}

#[test]
fn a_provided_function_may_take_its_bootstrap_from_a_layer() {
    let dir = tempfile::tempdir().unwrap();
    let (functions, layers) = parts(dir.path());
    let runtime_layer = layers
        .publish(&PublishLayerVersionRequest {
            layer_name: "runtime".into(),
            zip: zip(&[("bootstrap", 0o755, "#!/bin/sh\n")]),
            ..Default::default()
        })
        .unwrap();
    publish(&layers, "plain", "x");
    let handler_only = zip(&[("handler.sh", 0o644, "")]);
    let err = functions
        .create(
            function("f", "provided.al2023", &["plain:1"]),
            &handler_only,
        )
        .unwrap_err();
    assert!(err.to_string().contains("bootstrap"), "{err}");
    functions
        .create(
            function("f", "provided.al2023", &[&runtime_layer.layer_version_arn]),
            &handler_only,
        )
        .unwrap();
    let err = functions
        .update_configuration(UpdateFunctionConfigurationRequest {
            name: "f".into(),
            set_layers: true,
            layers: vec!["plain:1".into()],
            ..Default::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("bootstrap"), "{err}");
    assert_eq!(functions.get("f").unwrap().layers.len(), 1, "unchanged");
}
