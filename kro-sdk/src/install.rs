//! Installing a graph's RGD on the hub and waiting for the hub to accept it.

use std::time::Duration;

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::Value;
use tokio::time::Instant;

use crate::error::Error;
use crate::instance::{Backoff, FIELD_MANAGER};
use crate::{ResourceGraph, ResourceGraphDefinition};

fn rgd_api(client: &Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(
        kro_core::rgd::KRO_GROUP,
        kro_core::rgd::RGD_VERSION,
        kro_core::rgd::RGD_KIND,
    );
    Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(&gvk, "resourcegraphdefinitions"),
    )
}

/// Applies `T`'s RGD (server-side apply) and waits until the hub reports it
/// Active for this generation; returns the RGD as the cluster has it.
/// Retries while the RGD kind itself is not served yet (a hub starting up).
pub async fn install_rgd<T: ResourceGraph>(
    client: &Client,
    timeout: Duration,
) -> Result<ResourceGraphDefinition, Error> {
    let rgd = T::rgd();
    let name = rgd.name().to_owned();
    let body = serde_json::to_value(&rgd).map_err(|source| Error::Decode {
        what: format!("RGD {name}"),
        source,
    })?;
    let api = rgd_api(client);
    let deadline = Instant::now() + timeout;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut backoff = Backoff::new();
    loop {
        match api.patch(&name, &params, &Patch::Apply(&body)).await {
            Ok(_) => break,
            Err(kube::Error::Api(s)) if s.code == 404 && Instant::now() < deadline => {
                tracing::debug!(rgd = %name, "RGD kind not served yet; retrying");
                backoff.sleep(deadline).await;
            }
            Err(e) => return Err(Error::kube(format!("apply RGD {name}"))(e)),
        }
    }
    let mut last = "not observed".to_owned();
    let mut backoff = Backoff::new();
    loop {
        let obj = api
            .get(&name)
            .await
            .map_err(Error::kube(format!("get RGD {name}")))?;
        let status = obj.data.get("status").cloned().unwrap_or(Value::Null);
        let state = status.get("state").and_then(Value::as_str).unwrap_or("");
        let ready = status
            .get("conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"));
        let current = match (
            ready.and_then(|c| c["observedGeneration"].as_i64()),
            obj.metadata.generation,
        ) {
            (Some(seen), Some(now)) => seen >= now,
            _ => true,
        };
        let message = ready
            .and_then(|c| c["message"].as_str())
            .unwrap_or_default()
            .to_owned();
        if state == "Active" && current {
            let mut value = serde_json::to_value(&obj).map_err(|source| Error::Decode {
                what: format!("RGD {name}"),
                source,
            })?;
            // The server adds managedFields and other metadata the engine
            // types keep verbatim; nothing to strip.
            if let Some(m) = value.as_object_mut() {
                m.remove("status");
            }
            return serde_json::from_value(value).map_err(|source| Error::Decode {
                what: format!("RGD {name}"),
                source,
            });
        }
        last = if state.is_empty() {
            last
        } else {
            format!("state {state}: {message}")
        };
        if Instant::now() >= deadline {
            return Err(if state == "Inactive" {
                Error::RgdInactive {
                    name,
                    reason: message,
                    timeout,
                }
            } else {
                Error::Timeout {
                    what: format!("RGD {name} to become Active"),
                    timeout,
                    last,
                }
            });
        }
        backoff.sleep(deadline).await;
    }
}
