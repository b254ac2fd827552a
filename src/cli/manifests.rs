//! Reading manifests for the command-line tools: files or folders (`.yaml`,
//! `.yml`, `.json`), multi-document YAML, and the kinds the tools use. Other
//! kinds are skipped and listed, so a folder of a whole app can be given.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use serde::de::DeserializeOwned;
use serde_json::Value;

use kube::ResourceExt;

use crate::api::{ClusterGrantProvider, GrantProvider, GrantStatus};

/// Namespace of objects that name none (as with `kubectl apply`).
pub const DEFAULT_NAMESPACE: &str = "default";

/// [`Manifests`], with one list per grant kind of the list in [`crate::vendors`].
macro_rules! manifests {
    ([$($module:ident $kind:ident $grant:ident $block:ident $title:literal),* $(,)?]) => {
        /// Everything read from the manifests.
        #[derive(Default, Debug)]
        pub struct Manifests {
            /// `GrantProvider`s.
            pub providers: Vec<GrantProvider>,
            /// `ClusterGrantProvider`s.
            pub cluster_providers: Vec<ClusterGrantProvider>,
            $(
                #[doc = concat!("`", stringify!($grant), "`s.")]
                pub $module: Vec<crate::api::$grant>,
            )*
            /// Secrets (values are only read when a provider needs them).
            pub secrets: Vec<Secret>,
            /// Namespaces (their labels decide `ClusterGrantProvider` scoping).
            pub namespaces: Vec<Namespace>,
            /// Kinds of this API that this version cannot act on yet, as `kind namespace/name`.
            pub unsupported: Vec<String>,
            /// Documents of other APIs that were skipped, as `kind name`.
            pub skipped: Vec<String>,
        }

        impl Manifests {
            /// Adds a grant of kind `kind` (of this API); `false` when no
            /// vendor has that kind.
            fn add_grant(
                &mut self,
                kind: &str,
                place: &str,
                value: &mut Value,
            ) -> Result<bool, ManifestError> {
                $(
                    if kind == stringify!($grant) {
                        self.$module.push(typed(place, std::mem::take(value))?);
                        return Ok(true);
                    }
                )*
                Ok(false)
            }

            /// How many grant resources of every kind were read.
            pub fn grant_count(&self) -> usize {
                0 $(+ self.$module.len())*
            }

            /// Sets the status of the grants of kind `kind` shown as
            /// `namespace/name` (what `apply` reported for it, as the controller
            /// would write it); `false` when there is none.
            pub fn set_status(&mut self, kind: &str, shown: &str, status: &GrantStatus) -> bool {
                let mut found = false;
                $(
                    if kind == stringify!($grant) {
                        for grant in self.$module.iter_mut() {
                            let namespace = grant.namespace().unwrap_or_default();
                            if format!("{namespace}/{}", grant.name_any()) == shown {
                                grant.status = Some(status.clone());
                                found = true;
                            }
                        }
                    }
                )*
                found
            }
        }
    };
}
crate::vendors::vendors!(manifests);

/// A manifest that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ManifestError {
    /// The file (and document number).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Manifests {
    /// Reads every manifest under `paths`.
    pub fn load(paths: &[PathBuf]) -> Result<Manifests, ManifestError> {
        let mut manifests = Manifests::default();
        for path in paths {
            for file in files(path)? {
                let text = std::fs::read_to_string(&file).map_err(|error| ManifestError {
                    path: file.display().to_string(),
                    message: error.to_string(),
                })?;
                manifests.add_text(&file.display().to_string(), &text)?;
            }
        }
        Ok(manifests)
    }

    /// Adds the documents of one file's text.
    pub fn add_text(&mut self, origin: &str, text: &str) -> Result<(), ManifestError> {
        for (index, document) in serde_norway::Deserializer::from_str(text).enumerate() {
            let place = format!("{origin} (document {})", index + 1);
            let value: Value =
                serde::Deserialize::deserialize(document).map_err(|error| ManifestError {
                    path: place.clone(),
                    message: format!("not YAML: {error}"),
                })?;
            if value.is_null() {
                continue;
            }
            if value["kind"] == "List" {
                for item in value["items"].as_array().cloned().unwrap_or_default() {
                    self.add(&place, item)?;
                }
            } else {
                self.add(&place, value)?;
            }
        }
        Ok(())
    }

    fn add(&mut self, place: &str, mut value: Value) -> Result<(), ManifestError> {
        let api_version = value["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = value["kind"].as_str().unwrap_or_default().to_string();
        let name = value["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let namespaced = !matches!(kind.as_str(), "ClusterGrantProvider" | "Namespace");
        if namespaced && value["metadata"]["namespace"].is_null() && value["metadata"].is_object() {
            value["metadata"]["namespace"] = DEFAULT_NAMESPACE.into();
        }
        let namespace = value["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match (api_version.as_str(), kind.as_str()) {
            ("v1", "Secret") => self.secrets.push(typed(place, value)?),
            ("v1", "Namespace") => self.namespaces.push(typed(place, value)?),
            ("grantoperator.dev/v1alpha1", "GrantProvider") => {
                self.providers.push(typed(place, value)?)
            }
            ("grantoperator.dev/v1alpha1", "ClusterGrantProvider") => {
                self.cluster_providers.push(typed(place, value)?)
            }
            ("grantoperator.dev/v1alpha1", other)
                if self.add_grant(other, place, &mut value)? => {}
            ("grantoperator.dev/v1alpha1", other) => {
                self.unsupported.push(format!("{other} {namespace}/{name}"))
            }
            _ => self.skipped.push(format!("{kind} {name}")),
        }
        Ok(())
    }

    /// The labels of a namespace, when the manifests define it.
    pub fn namespace_labels(
        &self,
        name: &str,
    ) -> Option<std::collections::BTreeMap<String, String>> {
        self.namespaces
            .iter()
            .find(|namespace| namespace.metadata.name.as_deref() == Some(name))
            .map(|namespace| namespace.metadata.labels.clone().unwrap_or_default())
    }
}

fn typed<T: DeserializeOwned>(place: &str, value: Value) -> Result<T, ManifestError> {
    serde_json::from_value(value).map_err(|error| ManifestError {
        path: place.to_string(),
        message: format!("not a valid object of its kind: {error}"),
    })
}

/// The manifest files of a path: the file itself, or every YAML/JSON file
/// below a folder, in name order.
fn files(path: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    let error = |message: String| ManifestError {
        path: path.display().to_string(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| error(e.to_string()))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut found = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| error(e.to_string()))? {
            let entry = entry.map_err(|e| error(e.to_string()))?;
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if matches!(
                path.extension().and_then(|ext| ext.to_str()),
                Some("yaml" | "yml" | "json")
            ) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_sorted_by_kind_and_namespaced_by_default() {
        let mut manifests = Manifests::default();
        manifests
            .add_text(
                "inline",
                r#"
apiVersion: v1
kind: Secret
metadata: { name: s }
stringData: { token: t }
---
apiVersion: grantoperator.dev/v1alpha1
kind: SigmaGrant
metadata: { name: g, namespace: analytics }
spec:
  providerRef: { name: p }
  connectionId: c
  grants: [{ member: { email: a@b.c }, permission: usage }]
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
---
"#,
            )
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(manifests.secrets.len(), 1);
        assert_eq!(
            manifests.secrets[0].metadata.namespace.as_deref(),
            Some(DEFAULT_NAMESPACE)
        );
        assert_eq!(manifests.sigma.len(), 1);
        assert_eq!(manifests.skipped, vec!["Deployment web".to_string()]);
    }

    #[test]
    fn an_invalid_object_names_its_document() {
        let mut manifests = Manifests::default();
        let error = manifests
            .add_text(
                "bad.yaml",
                "apiVersion: grantoperator.dev/v1alpha1\nkind: SigmaGrant\nmetadata: { name: g }\nspec: { connectionId: 3 }\n",
            )
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert!(
            error.starts_with("bad.yaml (document 1): not a valid object"),
            "{error}"
        );
    }
}
