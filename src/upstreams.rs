//! Builds the configured reconcilers from the upstream settings: a system
//! whose URL is unset gets none (its step is `skipped`).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use dezky_controller::pass::Reconcilers;
use dezky_controller::reconcile::authentik::AuthentikReconciler;
use dezky_controller::reconcile::ocis::{OcisReconciler, OcisSettings};
use dezky_controller::reconcile::stalwart::{StalwartReconciler, StalwartSettings};
use dezky_core::http::{RateLimit, UpstreamGuard};
use dezky_core::model::System;
use dezky_core::plans::PlanQuotas;
use dezky_core::secret::Secret;
use dezky_upstream::authentik::AuthentikClient;
use dezky_upstream::ocis::{roles, OcisClient};
use dezky_upstream::oidc_token::{discover_token_endpoint, TokenSource};
use dezky_upstream::stalwart::{StalwartAuth, StalwartClient};

use crate::config::UpstreamArgs;

/// What the reconcilers share besides their own upstream settings.
pub struct Shared<'a> {
    pub http: reqwest::Client,
    pub group_prefix: &'a str,
    pub plans: &'a PlanQuotas,
    pub oidc_issuer: Option<&'a str>,
    /// How long a system's snapshot serves resyncs before it is listed again
    /// (the resync interval: one list per system per interval).
    pub snapshot_age: std::time::Duration,
}

/// One reconciler per configured system.
pub async fn reconcilers(args: &UpstreamArgs, shared: Shared<'_>) -> anyhow::Result<Reconcilers> {
    let mut out = Reconcilers::new();
    if let Some(url) = &args.authentik_api_url {
        let token = secret(
            &args.authentik_token,
            &args.authentik_token_file,
            "AUTHENTIK_TOKEN",
        )?
        .context("AUTHENTIK_API_URL is set but AUTHENTIK_TOKEN (or AUTHENTIK_TOKEN_FILE) is not")?;
        let client = AuthentikClient::new(shared.http.clone(), url, token)
            .context("AUTHENTIK_API_URL")?
            .with_guard(guard(
                "authentik",
                args.limits.authentik_qps,
                args.limits.authentik_burst,
            ));
        out.insert(
            System::Authentik,
            Arc::new(AuthentikReconciler::new(
                client,
                shared.group_prefix,
                shared.snapshot_age,
            )),
        );
    }
    if let Some(url) = &args.stalwart_api_url {
        let token = secret(
            &args.stalwart_token,
            &args.stalwart_token_file,
            "STALWART_TOKEN",
        )?;
        let password = secret(
            &args.stalwart_password,
            &args.stalwart_password_file,
            "STALWART_PASSWORD",
        )?;
        let auth = match (token, &args.stalwart_username, password) {
            (Some(token), _, _) => StalwartAuth::Bearer(token),
            (None, Some(username), Some(password)) => StalwartAuth::Basic {
                username: username.clone(),
                password,
            },
            _ => bail!("STALWART_API_URL is set but neither STALWART_TOKEN nor STALWART_USERNAME + STALWART_PASSWORD are (each secret may be a *_FILE)"),
        };
        let client = StalwartClient::new(shared.http.clone(), url, auth).with_guard(guard(
            "stalwart",
            args.limits.stalwart_qps,
            args.limits.stalwart_burst,
        ));
        out.insert(
            System::Stalwart,
            Arc::new(StalwartReconciler::new(
                client,
                StalwartSettings {
                    certificate_management: args.stalwart_certificate_management,
                    dns_management: args.stalwart_dns_management,
                    dkim_management: args.stalwart_dkim_management,
                },
                shared.snapshot_age,
            )),
        );
    }
    if let Some(url) = &args.ocis_api_url {
        let client_secret = secret(
            &args.ocis_client_secret,
            &args.ocis_client_secret_file,
            "OCIS_CLIENT_SECRET",
        )?;
        let (Some(id), Some(client_secret)) = (&args.ocis_client_id, client_secret) else {
            bail!("OCIS_API_URL is set but OCIS_CLIENT_ID and OCIS_CLIENT_SECRET (or OCIS_CLIENT_SECRET_FILE) are not both set");
        };
        let token_url = match (&args.oidc_token_url, shared.oidc_issuer) {
            (Some(url), _) => url.clone(),
            (None, Some(issuer)) => discover_token_endpoint(&shared.http, issuer)
                .await
                .context("discovering the token endpoint for oCIS from OIDC_ISSUER")?,
            (None, None) => {
                bail!("OCIS_API_URL is set but neither OIDC_TOKEN_URL nor OIDC_ISSUER is")
            }
        };
        let tokens = Arc::new(TokenSource::new(
            shared.http.clone(),
            token_url,
            id,
            client_secret,
            args.ocis_token_scope.clone(),
        ));
        let client = Arc::new(
            OcisClient::new(shared.http.clone(), url, tokens).with_guard(guard(
                "ocis",
                args.limits.ocis_qps,
                args.limits.ocis_burst,
            )),
        );
        let role = &args.ocis_group_role;
        let group_role_id = roles::by_name(role).map_or_else(|| role.clone(), str::to_owned);
        let settings = OcisSettings {
            group_role_id,
            group_prefix: shared.group_prefix.to_string(),
            create_groups: args.ocis_create_groups,
            purge_on_delete: args.ocis_purge_on_delete,
            plan_quotas: shared.plans.clone(),
        };
        out.insert(
            System::Ocis,
            Arc::new(OcisReconciler::new(client, settings, shared.snapshot_age)),
        );
    }
    Ok(out)
}

/// The credential `NAME` from its value or its `NAME_FILE` (read at each
/// change of the file, so a rotation needs no restart); the file must be
/// readable at start. Both set is a mistake worth stopping for.
fn secret(
    value: &Option<String>,
    file: &Option<PathBuf>,
    name: &str,
) -> anyhow::Result<Option<Secret>> {
    match (value, file) {
        (Some(_), Some(_)) => bail!("{name} and {name}_FILE are both set; set one"),
        (Some(value), None) => Ok(Some(value.clone().into())),
        (None, Some(path)) => {
            let secret = Secret::file(path);
            secret.get().with_context(|| format!("{name}_FILE"))?;
            Ok(Some(secret))
        }
        (None, None) => Ok(None),
    }
}

/// The shared gate of one upstream (`qps` 0 = no rate limit).
fn guard(system: &'static str, qps: u32, burst: u32) -> Arc<UpstreamGuard> {
    Arc::new(UpstreamGuard::new(system, RateLimit::new(qps, burst)))
}
