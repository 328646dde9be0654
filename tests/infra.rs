//! `infra/template.yaml`: the least-privilege rules every role must keep (read
//! from the template itself, so an edit cannot quietly widen them), and the
//! whole template deployed into the AWS emulator through CloudFormation by
//! `infra/local-up`. (Every other AWS-backend test also runs on stacks that
//! `infra/local-up` deploys from this template.)

use builds_functions::Endpoint;
use builds_tests::{aws_endpoint, repo_root, Stack};
use serde_json::Value;
use std::collections::BTreeSet;

fn template() -> Value {
    let text = std::fs::read_to_string(repo_root().join("infra/template.yaml"))
        .expect("read infra/template.yaml");
    serde_yaml_ng::from_str(&text).expect("the template is YAML in long-form intrinsics")
}

fn resources(template: &Value) -> &serde_json::Map<String, Value> {
    template["Resources"].as_object().expect("Resources")
}

/// One allowed statement of a role: its actions and the resources it names
/// (logical ids of referenced resources, plus the literal text of each).
#[derive(Debug)]
struct Grant {
    actions: Vec<String>,
    resources: Vec<String>,
    condition: Value,
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// How a resource entry reads: `JobsTable` for `Fn::GetAtt: [JobsTable, Arn]`,
/// the substitution text for `Fn::Sub`, the literal otherwise.
fn resource_text(value: &Value) -> String {
    if let Some(get_att) = value.get("Fn::GetAtt") {
        return get_att[0].as_str().unwrap_or_default().to_string();
    }
    if let Some(sub) = value.get("Fn::Sub") {
        return sub.as_str().unwrap_or_default().to_string();
    }
    if let Some(reference) = value.get("Ref") {
        return reference.as_str().unwrap_or_default().to_string();
    }
    value.as_str().unwrap_or_default().to_string()
}

fn grants_of_role(template: &Value, role: &str) -> Vec<Grant> {
    let role = &resources(template)[role];
    assert_eq!(role["Type"], "AWS::IAM::Role");
    assert!(
        role["Properties"].get("ManagedPolicyArns").is_none(),
        "roles carry their own inline policies, no managed ones"
    );
    let mut grants = Vec::new();
    for policy in role["Properties"]["Policies"]
        .as_array()
        .expect("inline policies")
    {
        for statement in policy["PolicyDocument"]["Statement"]
            .as_array()
            .expect("statements")
        {
            assert_eq!(statement["Effect"], "Allow", "roles only allow");
            let resources = match &statement["Resource"] {
                Value::Array(items) => items.iter().map(resource_text).collect(),
                other => vec![resource_text(other)],
            };
            grants.push(Grant {
                actions: strings(&statement["Action"]),
                resources,
                condition: statement["Condition"].clone(),
            });
        }
    }
    grants
}

fn actions(grants: &[Grant]) -> BTreeSet<String> {
    grants.iter().flat_map(|g| g.actions.clone()).collect()
}

fn is_write(action: &str) -> bool {
    let verb = action.split(':').nth(1).unwrap_or(action);
    [
        "Put",
        "Update",
        "Delete",
        "BatchWrite",
        "Transact",
        "Send",
        "Create",
    ]
    .iter()
    .any(|w| verb.starts_with(w))
}

/// Function name → its role's logical id, read from the template.
fn function_roles(template: &Value) -> Vec<(String, String, &Value)> {
    resources(template)
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Lambda::Function")
        .map(|(_, r)| {
            let name = r["Properties"]["FunctionName"]["Fn::Sub"]
                .as_str()
                .expect("FunctionName: Fn::Sub ${NamePrefix}<name>")
                .trim_start_matches("${NamePrefix}")
                .to_string();
            let role = r["Properties"]["Role"]["Fn::GetAtt"][0]
                .as_str()
                .expect("Role: Fn::GetAtt [<Role>, Arn]")
                .to_string();
            (name, role, r)
        })
        .collect()
}

#[test]
fn every_endpoint_has_a_function_a_route_and_its_code() {
    let template = template();
    let functions = function_roles(&template);
    let names: BTreeSet<&str> = functions.iter().map(|(n, _, _)| n.as_str()).collect();
    let endpoints: BTreeSet<&str> = Endpoint::ALL.iter().map(|e| e.function_name()).collect();
    assert_eq!(names, endpoints, "one function per endpoint, no more");
    let routes: BTreeSet<String> = resources(&template)
        .values()
        .filter(|r| r["Type"] == "AWS::ApiGatewayV2::Route")
        .map(|r| {
            r["Properties"]["RouteKey"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    for endpoint in Endpoint::ALL {
        let key = format!("{} {}", endpoint.method(), endpoint.path());
        assert!(routes.contains(&key), "no route {key}");
    }
    for (name, _, function) in &functions {
        let p = &function["Properties"];
        assert_eq!(p["Code"], format!("../target/lambda/{name}/"), "{name}");
        assert_eq!(p["Runtime"], "provided.al2023", "{name}");
        assert_eq!(p["Handler"], "bootstrap", "{name}");
        assert_eq!(p["Architectures"][0]["Ref"], "FunctionArchitecture");
    }
    assert_eq!(
        template["Parameters"]["FunctionArchitecture"]["Default"],
        "arm64"
    );
}

#[test]
fn each_function_role_grants_only_what_its_endpoint_does() {
    let template = template();
    // Endpoints that may put a job on the queue: they submit or start jobs.
    let senders = ["submit-job", "start-job", "create-group", "start-group"];
    for (name, role, function) in function_roles(&template) {
        let grants = grants_of_role(&template, &role);
        let all = actions(&grants);
        let method = Endpoint::ALL
            .iter()
            .find(|e| e.function_name() == name)
            .map(|e| e.method())
            .expect("an endpoint");
        for grant in &grants {
            for action in &grant.actions {
                assert!(!action.contains('*'), "{name}: wildcard action {action}");
            }
            for resource in &grant.resources {
                assert!(
                    resource != "*" && !resource.is_empty(),
                    "{name}: {:?} on every resource",
                    grant.actions
                );
            }
        }
        if method == "GET" {
            let writes: Vec<_> = all.iter().filter(|a| is_write(a)).collect();
            // Writing its own log stream is the one write a reader makes.
            let writes: Vec<_> = writes
                .into_iter()
                .filter(|a| !a.starts_with("logs:"))
                .collect();
            assert!(writes.is_empty(), "read-only {name} may write: {writes:?}");
        }
        assert_eq!(
            all.contains("sqs:SendMessage"),
            senders.contains(&name.as_str()),
            "{name}: only {senders:?} send to the queue"
        );
        for action in &all {
            assert!(
                !matches!(
                    action.as_str(),
                    "dynamodb:DeleteTable" | "s3:DeleteBucket" | "sqs:DeleteQueue"
                ) && !action.starts_with("iam:"),
                "{name} may {action}"
            );
            // Deleting a secret or an SSH key: the only deletes endpoints make.
            assert!(
                !(action.starts_with("dynamodb:Delete")
                    && name != "delete-secret"
                    && name != "delete-ssh-key")
                    && action != "s3:DeleteObject",
                "no endpoint deletes records or blobs ({name}: {action})"
            );
        }
        for grant in &grants {
            if grant.resources.iter().any(|r| r == "SshKeysTable") {
                assert!(name.contains("-ssh-key"), "{name} reads SSH keys");
            }
            if grant.actions.iter().any(|a| a == "dynamodb:DeleteItem") {
                let table = if name == "delete-secret" {
                    "SecretsTable"
                } else {
                    "SshKeysTable"
                };
                assert_eq!(grant.resources, [table], "{name} deletes");
            }
        }
        // Secrets: only add-secret seals (asks KMS for data keys), and no
        // endpoint can open one: only the worker has kms:Decrypt.
        for grant in &grants {
            let kms: Vec<_> = grant
                .actions
                .iter()
                .filter(|a| a.starts_with("kms:"))
                .collect();
            if !kms.is_empty() {
                assert_eq!(name, "add-secret", "{name} uses KMS");
                assert_eq!(grant.actions, ["kms:GenerateDataKey"], "{name}: KMS");
                assert_eq!(grant.resources, ["SecretsKey"], "{name}: KMS");
            }
            if grant.resources.iter().any(|r| r == "SecretsTable") {
                assert!(
                    name.ends_with("-secret") || name.ends_with("-secrets"),
                    "{name} reads secrets"
                );
                let expected: &[&str] = match name.as_str() {
                    "delete-secret" => &["dynamodb:DeleteItem"],
                    "add-secret" if grant.actions.iter().any(|a| a == "dynamodb:PutItem") => {
                        &["dynamodb:PutItem"]
                    }
                    _ => &["dynamodb:Query"],
                };
                assert_eq!(grant.actions, expected, "{name}: secrets");
            }
        }
        // The log endpoints are reached by signed links and the webhook key
        // is public: those read no tokens; every other endpoint checks them.
        let public = name.ends_with("-log") || name == "webhook-key";
        let reads_tokens = grants.iter().any(|g| {
            g.resources.iter().any(|r| r == "TokensTable")
                && g.actions.iter().any(|a| a == "dynamodb:GetItem")
        });
        assert_eq!(reads_tokens, !public, "{name} and tokens");
        if name == "webhook-key" {
            assert!(
                grants.iter().all(|g| g.actions[0].starts_with("logs:")),
                "the webhook key needs nothing but its logs"
            );
        }
        for grant in &grants {
            if grant.resources.iter().any(|r| r == "TokensTable") {
                assert_eq!(grant.actions, ["dynamodb:GetItem"], "{name}: tokens");
            }
        }
        // Its logs go to its own log group only.
        let log_group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
            .as_str()
            .expect("LoggingConfig.LogGroup");
        for grant in grants.iter().filter(|g| g.actions[0].starts_with("logs:")) {
            assert_eq!(grant.resources, [log_group], "{name}: logs");
        }
        // Only the log endpoints read logs; only list-artifacts presigns artifacts.
        for grant in &grants {
            for resource in &grant.resources {
                if resource.contains("/logs/") {
                    assert!(name.ends_with("-log"), "{name} reads logs");
                }
                if resource.contains("/artifacts/") {
                    assert_eq!(name, "list-artifacts", "{name} reads artifacts");
                }
            }
        }
    }
}

#[test]
fn the_worker_role_takes_jobs_and_writes_results_only() {
    let template = template();
    let grants = grants_of_role(&template, "WorkerRole");
    let all = actions(&grants);
    let allowed: BTreeSet<&str> = [
        "sqs:ReceiveMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
        "kms:Decrypt",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
    ]
    .into_iter()
    .collect();
    for action in &all {
        assert!(allowed.contains(action.as_str()), "the worker may {action}");
    }
    for grant in &grants {
        for resource in &grant.resources {
            assert!(resource != "CountersTable", "the worker reaches {resource}");
            assert_ne!(resource, "*", "the worker on every resource");
        }
        // Its queue; and the dead-letter queue, only to drain it.
        if grant.actions.iter().any(|a| a.starts_with("sqs:")) {
            match grant.resources.as_slice() {
                [r] if r == "JobQueue" => {}
                [r] if r == "DeadLetterQueue" => {
                    assert_eq!(grant.actions, ["sqs:ReceiveMessage", "sqs:DeleteMessage"])
                }
                other => panic!("the worker reaches queues {other:?}"),
            }
        }
        // Jobs it records; secrets it only finds (and opens with KMS); job
        // tokens it only mints: it can neither read nor delete a token.
        if grant.actions.iter().any(|a| a.starts_with("dynamodb:")) {
            let expected: &[&str] = match grant.resources.as_slice() {
                [r] if r == "JobsTable" => &["dynamodb:GetItem", "dynamodb:PutItem"],
                [r] if r == "SecretsTable" || r == "SshKeysTable" => &["dynamodb:Query"],
                [r] if r == "TokensTable" => &["dynamodb:PutItem"],
                // Groups: it reads them, and may set only `triggered` (the
                // claim that fires a group's triggers once).
                [r] if r == "GroupsTable" && grant.actions[0] == "dynamodb:GetItem" => {
                    &["dynamodb:GetItem"]
                }
                [r] if r == "GroupsTable" => {
                    assert_eq!(
                        grant.condition["ForAllValues:StringEquals"]["dynamodb:Attributes"],
                        serde_json::json!(["id", "triggered"]),
                        "the worker updates groups' triggered attribute only"
                    );
                    &["dynamodb:UpdateItem"]
                }
                other => panic!("the worker reaches {other:?}"),
            };
            assert_eq!(grant.actions, expected, "{:?}", grant.resources);
        }
        if grant.actions.iter().any(|a| a.starts_with("kms:")) {
            assert_eq!(grant.actions, ["kms:Decrypt"]);
            assert_eq!(grant.resources, ["SecretsKey"]);
        }
        if grant
            .actions
            .iter()
            .any(|a| a == "s3:PutObject" || a == "s3:DeleteObject")
        {
            for resource in &grant.resources {
                assert!(
                    resource.ends_with("/logs/*") || resource.ends_with("/artifacts/*"),
                    "the worker writes {resource}"
                );
            }
        }
    }
}

#[test]
fn the_template_is_what_its_generator_makes() {
    let out = std::process::Command::new("python3")
        .arg(builds_tests::repo_root().join("infra/generate-template"))
        .arg("--check")
        .output()
        .expect("python3 runs infra/generate-template");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn workers_open_only_the_ssh_gateway() {
    let template = template();
    let r = resources(&template);
    let group = &r["WorkerSecurityGroup"]["Properties"];
    let ingress = group["SecurityGroupIngress"].as_array().expect("ingress");
    assert_eq!(ingress.len(), 1, "{ingress:?}");
    assert_eq!(ingress[0]["FromPort"], 2222);
    assert_eq!(ingress[0]["ToPort"], 2222);
    assert_eq!(ingress[0]["CidrIp"]["Ref"], "WorkerSshCidr");
    let data = &r["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"];
    assert_eq!(
        data["SecurityGroupIds"][0]["Fn::GetAtt"][0],
        "WorkerSecurityGroup"
    );
    let user_data = data["UserData"].to_string();
    assert!(
        user_data.contains("BUILDS_SSH_ADDR=0.0.0.0:2222"),
        "{user_data}"
    );
    assert!(user_data.contains("BUILDS_SSH_HOST="), "{user_data}");
}

#[test]
fn state_is_durable_encrypted_and_expires_as_documented() {
    let template = template();
    let r = resources(&template);
    for table in [
        "JobsTable",
        "GroupsTable",
        "TokensTable",
        "CountersTable",
        "SecretsTable",
        "SshKeysTable",
    ] {
        let p = &r[table]["Properties"];
        assert_eq!(p["BillingMode"], "PAY_PER_REQUEST", "{table}");
        assert_eq!(
            p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
            true
        );
        assert_eq!(p["SSESpecification"]["SSEEnabled"], true, "{table}");
        assert_eq!(r[table]["DeletionPolicy"], "Retain", "{table}");
    }
    assert_eq!(
        r["TokensTable"]["Properties"]["TimeToLiveSpecification"]["AttributeName"],
        "expires_at"
    );
    // Secrets are sealed under a rotating KMS key that outlives the stack.
    assert_eq!(r["SecretsKey"]["Type"], "AWS::KMS::Key");
    assert_eq!(r["SecretsKey"]["Properties"]["EnableKeyRotation"], true);
    assert_eq!(r["SecretsKey"]["DeletionPolicy"], "Retain");
    let index = &r["JobsTable"]["Properties"]["GlobalSecondaryIndexes"][0];
    assert_eq!(index["IndexName"], builds_storage::aws::OWNER_INDEX);
    let queue = &r["JobQueue"]["Properties"];
    assert_eq!(queue["SqsManagedSseEnabled"], true);
    assert_eq!(
        queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0],
        "DeadLetterQueue"
    );
    let bucket = &r["BlobBucket"]["Properties"];
    let block = &bucket["PublicAccessBlockConfiguration"];
    for key in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(block[key], true, "{key}");
    }
    let rules = bucket["LifecycleConfiguration"]["Rules"]
        .as_array()
        .expect("lifecycle rules");
    let expiry = |prefix: &str| {
        rules
            .iter()
            .find(|rule| rule["Prefix"] == prefix)
            .map(|rule| rule["ExpirationInDays"]["Ref"].clone())
    };
    assert_eq!(expiry("logs/"), Some("LogRetentionDays".into()));
    assert_eq!(expiry("artifacts/"), Some("ArtifactRetentionDays".into()));
    assert_eq!(
        template["Parameters"]["ArtifactRetentionDays"]["Default"],
        90
    );
    // The key layout the lifecycle rules and policies rely on.
    assert!(builds_domain::job::setup_log_key(1).starts_with("logs/"));
    assert!(builds_domain::job::task_log_key(1, "t").starts_with("logs/"));
    assert!(builds_domain::job::artifact_key(1, 1, "a").starts_with("artifacts/"));
    let tls = &r["BlobBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0];
    assert_eq!(tls["Effect"], "Deny");
    assert_eq!(tls["Condition"]["Bool"]["aws:SecureTransport"], "false");
}

/// The whole template (functions, HTTP API, worker fleet included) deploys
/// into the emulator through CloudFormation, and what it made is what the
/// template says. Function code: `BUILDS_TEST_FUNCTIONS`, which
/// `scripts/test` fills with `scripts/package-functions --dev`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_template_deploys_into_the_emulator() {
    let Some(_endpoint) = aws_endpoint() else {
        return;
    };
    let functions = match std::env::var("BUILDS_TEST_FUNCTIONS") {
        Ok(dir) if !dir.is_empty() => dir,
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but BUILDS_TEST_FUNCTIONS is not set: scripts/test packages them")
        }
        _ => {
            eprintln!(
                "SKIPPED: BUILDS_TEST_FUNCTIONS is not set; \
                 `scripts/package-functions --dev DIR` and export BUILDS_TEST_FUNCTIONS=DIR"
            );
            return;
        }
    };
    let stack = Stack::deploy(&["--functions", &functions, "--workers"]).await;
    let names = stack.names();
    let config = builds_storage::aws::load_sdk_config().await;

    // The queue: lease-long visibility, encrypted, dead letters after 5.
    let sqs = builds_storage::aws::SqsClient::new(&config);
    let queue_url = names.queue_url.clone().expect("queue URL");
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .expect("queue attributes");
    let attributes = attributes.attributes().cloned().unwrap_or_default();
    let get = |name: aws_sdk_sqs::types::QueueAttributeName| {
        attributes.get(&name).cloned().unwrap_or_default()
    };
    use aws_sdk_sqs::types::QueueAttributeName as Q;
    assert_eq!(get(Q::VisibilityTimeout), "60");
    let redrive: Value = serde_json::from_str(&get(Q::RedrivePolicy)).expect("redrive policy");
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "5"
    );
    assert!(redrive["deadLetterTargetArn"]
        .as_str()
        .is_some_and(|arn| arn.ends_with(&names.dead_letter_queue_name())));

    // The jobs table lists by owner through its index.
    let dynamo = builds_storage::aws::DynamoClient::new(&config);
    let table = dynamo
        .describe_table()
        .table_name(&names.jobs_table)
        .send()
        .await
        .expect("describe the jobs table");
    let indexes: Vec<String> = table
        .table()
        .map(|t| t.global_secondary_indexes())
        .unwrap_or_default()
        .iter()
        .filter_map(|i| i.index_name().map(str::to_string))
        .collect();
    assert_eq!(indexes, [builds_storage::aws::OWNER_INDEX]);

    // The bucket is encrypted. (moto applies no other bucket properties from
    // a template; lifecycle and public-access rules are checked in the
    // template above.)
    let s3 = builds_storage::aws::s3_client(&config);
    let encryption = s3
        .get_bucket_encryption()
        .bucket(&names.bucket)
        .send()
        .await
        .expect("bucket encryption");
    let algorithms: Vec<String> = encryption
        .server_side_encryption_configuration()
        .map(|c| c.rules())
        .unwrap_or_default()
        .iter()
        .filter_map(|rule| rule.apply_server_side_encryption_by_default())
        .map(|d| d.sse_algorithm().as_str().to_string())
        .collect();
    assert_eq!(algorithms, ["AES256"]);

    // One function per endpoint, on the runtime the template names (read through the aws CLI: no Lambda SDK in the tests).
    let listed = tokio::process::Command::new("aws")
        .args(["lambda", "list-functions", "--output", "json"])
        .env(
            "AWS_DEFAULT_REGION",
            std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
        )
        .output()
        .await
        .expect("aws lambda list-functions");
    assert!(listed.status.success(), "{:?}", listed);
    let listed: Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    let prefix = format!("{}-", stack.name);
    let ours: BTreeSet<String> = listed["Functions"]
        .as_array()
        .expect("Functions")
        .iter()
        .filter(|f| {
            f["FunctionName"]
                .as_str()
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .inspect(|f| {
            // (moto records no Architectures from a template; the static
            // test above checks them.)
            assert_eq!(f["Runtime"], "provided.al2023");
        })
        .filter_map(|f| f["FunctionName"].as_str())
        .map(|n| n.trim_start_matches(&prefix).to_string())
        .collect();
    let endpoints: BTreeSet<String> = Endpoint::ALL
        .iter()
        .map(|e| e.function_name().to_string())
        .collect();
    assert_eq!(ours, endpoints);

    // And the API works on what the stack made.
    let backend = builds_storage::Backend::aws(
        &names,
        builds_storage::UrlSigner::new(b"stack-test-key".to_vec()),
    )
    .await
    .expect("aws backend on the stack");
    let api = builds_tests::TestApi::on_backend(backend).await;
    let id = api
        .submit("image: debian/bookworm\ntasks:\n  - a: echo a\n", true)
        .await;
    let (status, job) = api.get(&format!("/api/jobs/{id}"), &api.alice).await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["status"], "queued");
}
