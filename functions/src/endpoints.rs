//! Every endpoint, by name: the local server mounts them all on one router; each
//! Lambda function mounts one.

use crate::state::AppState;
use crate::{error, groups, jobs, logs, secrets, ssh_keys, webhook_key};
use axum::routing::{delete, get, post, MethodRouter};
use axum::Router;

/// One endpoint of the API: one Lambda function each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ListJobs,
    SubmitJob,
    GetJob,
    GetManifest,
    ListArtifacts,
    StartJob,
    CancelJob,
    CreateGroup,
    GetGroup,
    StartGroup,
    CancelGroup,
    SetupLog,
    TaskLog,
    WebhookKey,
    AddSecret,
    ListSecrets,
    DeleteSecret,
    AddSshKey,
    ListSshKeys,
    DeleteSshKey,
}

impl Endpoint {
    pub const ALL: [Endpoint; 20] = [
        Endpoint::ListJobs,
        Endpoint::SubmitJob,
        Endpoint::GetJob,
        Endpoint::GetManifest,
        Endpoint::ListArtifacts,
        Endpoint::StartJob,
        Endpoint::CancelJob,
        Endpoint::CreateGroup,
        Endpoint::GetGroup,
        Endpoint::StartGroup,
        Endpoint::CancelGroup,
        Endpoint::SetupLog,
        Endpoint::TaskLog,
        Endpoint::WebhookKey,
        Endpoint::AddSecret,
        Endpoint::ListSecrets,
        Endpoint::DeleteSecret,
        Endpoint::AddSshKey,
        Endpoint::ListSshKeys,
        Endpoint::DeleteSshKey,
    ];

    /// The route path, in axum's syntax.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ListJobs | Endpoint::SubmitJob => "/api/jobs",
            Endpoint::GetJob => "/api/jobs/{id}",
            Endpoint::GetManifest => "/api/jobs/{id}/manifest",
            Endpoint::ListArtifacts => "/api/jobs/{id}/artifacts",
            Endpoint::StartJob => "/api/jobs/{id}/start",
            Endpoint::CancelJob => "/api/jobs/{id}/cancel",
            Endpoint::CreateGroup => "/api/job-group",
            Endpoint::GetGroup => "/api/job-group/{id}",
            Endpoint::StartGroup => "/api/job-group/{id}/start",
            Endpoint::CancelGroup => "/api/job-group/{id}/cancel",
            Endpoint::SetupLog => "/logs/{id}/setup",
            Endpoint::TaskLog => "/logs/{id}/tasks/{task}",
            Endpoint::WebhookKey => "/api/webhook-key",
            Endpoint::AddSecret | Endpoint::ListSecrets => "/api/secrets",
            Endpoint::DeleteSecret => "/api/secrets/{id}",
            Endpoint::AddSshKey | Endpoint::ListSshKeys => "/api/ssh-keys",
            Endpoint::DeleteSshKey => "/api/ssh-keys/{id}",
        }
    }

    /// The HTTP method.
    pub fn method(self) -> &'static str {
        match self {
            Endpoint::SubmitJob
            | Endpoint::StartJob
            | Endpoint::CancelJob
            | Endpoint::CreateGroup
            | Endpoint::StartGroup
            | Endpoint::CancelGroup
            | Endpoint::AddSecret
            | Endpoint::AddSshKey => "POST",
            Endpoint::DeleteSecret | Endpoint::DeleteSshKey => "DELETE",
            _ => "GET",
        }
    }

    /// The Lambda function's (and binary's) name.
    pub fn function_name(self) -> &'static str {
        match self {
            Endpoint::ListJobs => "list-jobs",
            Endpoint::SubmitJob => "submit-job",
            Endpoint::GetJob => "get-job",
            Endpoint::GetManifest => "get-manifest",
            Endpoint::ListArtifacts => "list-artifacts",
            Endpoint::StartJob => "start-job",
            Endpoint::CancelJob => "cancel-job",
            Endpoint::CreateGroup => "create-group",
            Endpoint::GetGroup => "get-group",
            Endpoint::StartGroup => "start-group",
            Endpoint::CancelGroup => "cancel-group",
            Endpoint::SetupLog => "setup-log",
            Endpoint::TaskLog => "task-log",
            Endpoint::WebhookKey => "webhook-key",
            Endpoint::AddSecret => "add-secret",
            Endpoint::ListSecrets => "list-secrets",
            Endpoint::DeleteSecret => "delete-secret",
            Endpoint::AddSshKey => "add-ssh-key",
            Endpoint::ListSshKeys => "list-ssh-keys",
            Endpoint::DeleteSshKey => "delete-ssh-key",
        }
    }

    fn handler(self) -> MethodRouter<AppState> {
        match self {
            Endpoint::ListJobs => get(jobs::list_jobs),
            Endpoint::SubmitJob => post(jobs::submit_job),
            Endpoint::GetJob => get(jobs::get_job),
            Endpoint::GetManifest => get(jobs::get_manifest),
            Endpoint::ListArtifacts => get(jobs::list_artifacts),
            Endpoint::StartJob => post(jobs::start_job),
            Endpoint::CancelJob => post(jobs::cancel_job),
            Endpoint::CreateGroup => post(groups::create_group),
            Endpoint::GetGroup => get(groups::get_group),
            Endpoint::StartGroup => post(groups::start_group),
            Endpoint::CancelGroup => post(groups::cancel_group),
            Endpoint::SetupLog => get(logs::setup_log),
            Endpoint::TaskLog => get(logs::task_log),
            Endpoint::WebhookKey => get(webhook_key::webhook_key),
            Endpoint::AddSecret => post(secrets::add_secret),
            Endpoint::ListSecrets => get(secrets::list_secrets),
            Endpoint::DeleteSecret => delete(secrets::delete_secret),
            Endpoint::AddSshKey => post(ssh_keys::add_ssh_key),
            Endpoint::ListSshKeys => get(ssh_keys::list_ssh_keys),
            Endpoint::DeleteSshKey => delete(ssh_keys::delete_ssh_key),
        }
    }
}

fn router_of(endpoints: &[Endpoint], state: AppState) -> Router {
    let mut routes: Vec<(&'static str, MethodRouter<AppState>)> = Vec::new();
    for endpoint in endpoints {
        match routes.iter_mut().find(|(path, _)| *path == endpoint.path()) {
            Some((_, method_router)) => {
                let merged = std::mem::take(method_router).merge(endpoint.handler());
                *method_router = merged;
            }
            None => routes.push((endpoint.path(), endpoint.handler())),
        }
    }
    let mut router = Router::new();
    for (path, method_router) in routes {
        router = router.route(path, method_router.fallback(error::method_not_allowed));
    }
    router.fallback(error::not_found).with_state(state)
}

/// Every endpoint on one router: what the local server serves.
pub fn api_router(state: AppState) -> Router {
    let router = router_of(&Endpoint::ALL, state.clone());
    match state.backend.dir_blobs.clone() {
        Some(blobs) => router.merge(crate::blobs::router(blobs)),
        None => router,
    }
}

/// One endpoint: what its Lambda function serves.
pub fn endpoint_router(endpoint: Endpoint, state: AppState) -> Router {
    router_of(&[endpoint], state)
}
