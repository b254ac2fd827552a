//! A grant resource as the watch keeps it: readable, or kept with its metadata
//! and the target its raw spec names; parsed without the metadata fields the
//! controllers never read.

use std::borrow::Cow;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::core::NamespaceResourceScope;
use serde::de;
use serde::de::{Deserialize, Deserializer};

use crate::vendor_api::GrantKind;

/// A grant resource as watched: readable, or kept with its metadata and the
/// target its raw spec names, so that one object this version cannot read
/// (a newer CRD, an unknown enum value) neither fails the watch for every
/// other object nor drops out of its target's members.
#[derive(Clone, Debug)]
pub struct Watched<K> {
    /// The object, or why it could not be read. Shared: the reflector store, each
    /// reconcile and each sync that gathers it as a member read the same copy.
    pub object: Result<Arc<K>, Unreadable>,
}

/// An object that did not deserialize.
#[derive(Clone, Debug)]
pub struct Unreadable {
    /// Its metadata.
    pub metadata: ObjectMeta,
    /// The target it names, if that much could be read.
    pub unit_key: Option<String>,
    /// The deserialization error.
    pub error: String,
}

impl<K: GrantKind> Watched<K> {
    /// The target the object declares, readable or not.
    pub fn unit_key(&self) -> Option<String> {
        match &self.object {
            Ok(object) => Some(object.unit_key()),
            Err(unreadable) => unreadable.unit_key.clone(),
        }
    }
}

/// The top-level fields a grant kind reads; everything else (and the metadata
/// fields in [`DROPPED_METADATA`]) is skipped while parsing, never built.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawObject {
    #[serde(default)]
    api_version: Option<serde_json::Value>,
    #[serde(default)]
    kind: Option<serde_json::Value>,
    #[serde(default)]
    metadata: Option<SlimMetadata>,
    #[serde(default)]
    spec: Option<serde_json::Value>,
    #[serde(default)]
    status: Option<serde_json::Value>,
}

/// Metadata fields the controllers never read (see `run::slim`): on a real API
/// server `managedFields` and `last-applied-configuration` are most of an
/// object's bytes, so they are skipped as they are parsed.
const DROPPED_METADATA: [&str; 4] = ["managedFields", "annotations", "labels", "ownerReferences"];

/// An object's metadata without [`DROPPED_METADATA`].
struct SlimMetadata(serde_json::Map<String, serde_json::Value>);

impl<'de> Deserialize<'de> for SlimMetadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = SlimMetadata;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("object metadata")
            }
            fn visit_map<A: de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<SlimMetadata, A::Error> {
                let mut kept = serde_json::Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    if DROPPED_METADATA.contains(&key.as_str()) {
                        map.next_value::<de::IgnoredAny>()?;
                    } else {
                        kept.insert(key, map.next_value()?);
                    }
                }
                Ok(SlimMetadata(kept))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

impl<'de, K: GrantKind> Deserialize<'de> for Watched<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawObject::deserialize(deserializer)?;
        let mut value = serde_json::Map::new();
        let fields = [
            ("apiVersion", raw.api_version),
            ("kind", raw.kind),
            (
                "metadata",
                raw.metadata.map(|m| serde_json::Value::Object(m.0)),
            ),
            ("spec", raw.spec),
            ("status", raw.status),
        ];
        for (key, field) in fields {
            if let Some(field) = field {
                value.insert(key.into(), field);
            }
        }
        let value = serde_json::Value::Object(value);
        let object = match K::deserialize(&value) {
            Ok(object) => Ok(Arc::new(object)),
            Err(error) => {
                let metadata =
                    ObjectMeta::deserialize(&value["metadata"]).map_err(de::Error::custom)?;
                Err(Unreadable {
                    metadata,
                    unit_key: K::unit_key_of(&value),
                    error: error.to_string(),
                })
            }
        };
        Ok(Watched { object })
    }
}

impl<K: GrantKind> Resource for Watched<K> {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dynamic: &()) -> Cow<'_, str> {
        K::kind(dynamic)
    }
    fn group(dynamic: &()) -> Cow<'_, str> {
        K::group(dynamic)
    }
    fn version(dynamic: &()) -> Cow<'_, str> {
        K::version(dynamic)
    }
    fn plural(dynamic: &()) -> Cow<'_, str> {
        K::plural(dynamic)
    }
    fn meta(&self) -> &ObjectMeta {
        match &self.object {
            Ok(object) => object.meta(),
            Err(unreadable) => &unreadable.metadata,
        }
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match &mut self.object {
            // Unique while the watch slims it, before the store shares it.
            Ok(object) => Arc::make_mut(object).meta_mut(),
            Err(unreadable) => &mut unreadable.metadata,
        }
    }
}
