//! Where a Kubernetes SD config's API server is and how to authenticate to
//! it: `api_server` with the config's HTTP client settings, the current
//! context of a `kubeconfig_file`, or the pod's service account
//! (in-cluster), as client-go resolves them for Prometheus 2.42.
//!
//! A kubeconfig's inline `*-data` certificates and keys are written once to
//! files (mode 0600) in a private directory under the system's temporary
//! directory, because the shared TLS client cache builds clients from files
//! (so that rotated files are picked up). Exec and auth-provider plugins are
//! refused with a clear error. The service-account token file is read again
//! for every request, so a rotated (bound, expiring) token is used at once.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;

use scrapegrid_common::config::http_client::TlsConfig;
use scrapegrid_common::config::{HttpAuth, KubernetesAccess};

/// The service account's files inside a pod.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// How requests to the API server authenticate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiAuth {
    /// Credentials as an SD config's HTTP settings give them (sent by
    /// [`crate::discovery::with_auth`]).
    Http(HttpAuth),
    /// A bearer token read from this file at every request.
    BearerFile(PathBuf),
}

/// A resolved API server: base URL (no trailing `/`), TLS and credentials.
#[derive(Clone, Debug)]
pub struct ApiEndpoint {
    pub base: String,
    pub tls: TlsConfig,
    pub follow_redirects: bool,
    pub enable_http2: bool,
    pub proxy_url: Option<String>,
    pub auth: ApiAuth,
    /// The service account's namespace (in-cluster only).
    pub own_namespace: Option<String>,
}

/// Resolves `access`; `want_own_namespace` reads the service account's
/// namespace file (an error when it is missing or empty, as in Prometheus).
pub fn resolve(access: &KubernetesAccess, want_own_namespace: bool) -> Result<ApiEndpoint, String> {
    match access {
        KubernetesAccess::ApiServer {
            url,
            auth,
            tls,
            follow_redirects,
            enable_http2,
            proxy_url,
        } => Ok(ApiEndpoint {
            base: url.trim_end_matches('/').to_string(),
            tls: tls.clone(),
            follow_redirects: *follow_redirects,
            enable_http2: *enable_http2,
            proxy_url: proxy_url.clone(),
            auth: ApiAuth::Http(auth.clone()),
            own_namespace: None,
        }),
        KubernetesAccess::KubeConfig(path) => kubeconfig(path),
        KubernetesAccess::InCluster => in_cluster(
            std::env::var("KUBERNETES_SERVICE_HOST").ok(),
            std::env::var("KUBERNETES_SERVICE_PORT").ok(),
            Path::new(SERVICE_ACCOUNT_DIR),
            want_own_namespace,
        ),
    }
}

/// client-go's `rest.InClusterConfig`.
fn in_cluster(
    host: Option<String>,
    port: Option<String>,
    dir: &Path,
    want_own_namespace: bool,
) -> Result<ApiEndpoint, String> {
    let (Some(host), Some(port)) = (
        host.filter(|h| !h.is_empty()),
        port.filter(|p| !p.is_empty()),
    ) else {
        return Err(
            "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and \
                    KUBERNETES_SERVICE_PORT must be defined"
                .into(),
        );
    };
    let token = dir.join("token");
    std::fs::metadata(&token).map_err(|e| format!("open {}: {e}", token.display()))?;
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let own_namespace = if want_own_namespace {
        let file = dir.join("namespace");
        let ns = std::fs::read_to_string(&file)
            .map_err(|e| format!("could not determine the pod's namespace: {e}"))?;
        if ns.is_empty() {
            return Err("could not read own namespace name (empty file)".into());
        }
        Some(ns)
    } else {
        None
    };
    Ok(ApiEndpoint {
        base: format!("https://{host}:{port}"),
        tls: TlsConfig {
            ca_file: Some(dir.join("ca.crt")),
            ..TlsConfig::default()
        },
        follow_redirects: true,
        enable_http2: true,
        proxy_url: None,
        auth: ApiAuth::BearerFile(token),
        own_namespace,
    })
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct KubeConfigFile {
    clusters: Vec<Named<Cluster>>,
    users: Vec<Named<User>>,
    contexts: Vec<Named<Context>>,
    current_context: String,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    value: Option<T>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct Cluster {
    server: String,
    certificate_authority: Option<String>,
    certificate_authority_data: Option<String>,
    insecure_skip_tls_verify: bool,
    tls_server_name: Option<String>,
    proxy_url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct User {
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<String>,
    client_certificate: Option<String>,
    client_certificate_data: Option<String>,
    client_key: Option<String>,
    client_key_data: Option<String>,
    username: Option<String>,
    password: Option<String>,
    exec: Option<serde_json::Value>,
    auth_provider: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Context {
    cluster: String,
    user: String,
}

/// The current context of the kubeconfig at `path`.
fn kubeconfig(path: &Path) -> Result<ApiEndpoint, String> {
    let err = |e: String| format!("kubeconfig_file {}: {e}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let file: KubeConfigFile = yaml_serde::from_str(&text).map_err(|e| err(e.to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let context = find(&file.contexts, &file.current_context)
        .ok_or_else(|| err(format!("context {:?} not found", file.current_context)))?;
    let cluster = find(&file.clusters, &context.cluster)
        .ok_or_else(|| err(format!("cluster {:?} not found", context.cluster)))?;
    let default_user = User::default();
    let user = if context.user.is_empty() {
        &default_user
    } else {
        find(&file.users, &context.user)
            .ok_or_else(|| err(format!("user {:?} not found", context.user)))?
    };
    if user.exec.is_some() || user.auth_provider.is_some() {
        return Err(err(format!(
            "user {:?}: exec and auth-provider credential plugins are not supported; \
             use a token, tokenFile or client certificate",
            context.user
        )));
    }
    if cluster.server.is_empty() {
        return Err(err("no server found for cluster".into()));
    }
    let materialize = MaterializedFiles::new(path);
    let file_or_data = |file: &Option<String>, data: &Option<String>, name: &str| {
        match (file, data) {
            (_, Some(data)) if !data.is_empty() => materialize.write(name, data).map(Some),
            (Some(f), _) if !f.is_empty() => Ok(Some(relative(dir, f))),
            _ => Ok(None),
        }
        .map_err(err)
    };
    let tls = TlsConfig {
        ca_file: file_or_data(
            &cluster.certificate_authority,
            &cluster.certificate_authority_data,
            "ca.crt",
        )?,
        cert_file: file_or_data(
            &user.client_certificate,
            &user.client_certificate_data,
            "client.crt",
        )?,
        key_file: file_or_data(&user.client_key, &user.client_key_data, "client.key")?,
        server_name: cluster.tls_server_name.clone().unwrap_or_default(),
        insecure_skip_verify: cluster.insecure_skip_tls_verify,
        min_version: None,
    };
    let auth = match (&user.token, &user.token_file, &user.username) {
        (Some(t), _, _) if !t.is_empty() => ApiAuth::Http(HttpAuth::Authorization {
            scheme: "Bearer".into(),
            credentials: t.clone(),
        }),
        (_, Some(f), _) if !f.is_empty() => ApiAuth::BearerFile(relative(dir, f)),
        (_, _, Some(u)) if !u.is_empty() => ApiAuth::Http(HttpAuth::Basic {
            username: u.clone(),
            password: user.password.clone().unwrap_or_default(),
        }),
        _ => ApiAuth::Http(HttpAuth::None),
    };
    Ok(ApiEndpoint {
        base: cluster.server.trim_end_matches('/').to_string(),
        tls,
        follow_redirects: true,
        enable_http2: true,
        proxy_url: cluster.proxy_url.clone().filter(|p| !p.is_empty()),
        auth,
        own_namespace: None,
    })
}

fn find<'a, T>(list: &'a [Named<T>], name: &str) -> Option<&'a T> {
    list.iter()
        .find(|n| n.name == name)
        .and_then(|n| n.value.as_ref())
}

fn relative(dir: &Path, file: &str) -> PathBuf {
    if Path::new(file).is_relative() {
        dir.join(file)
    } else {
        PathBuf::from(file)
    }
}

/// A private directory for a kubeconfig's inline certificates and keys.
struct MaterializedFiles {
    dir: PathBuf,
}

impl MaterializedFiles {
    fn new(kubeconfig: &Path) -> Self {
        let tag = scrapegrid_common::labels::Labels::from_pairs([(
            "k",
            kubeconfig.display().to_string(),
        )])
        .stable_hash();
        let dir = std::env::temp_dir().join(format!(
            "scrapegrid-kubeconfig-{}-{tag:016x}",
            std::process::id()
        ));
        Self { dir }
    }

    /// Decodes base64 `data` into the file `name`; returns its path.
    fn write(&self, name: &str, data: &str) -> Result<PathBuf, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| format!("{name} data is not base64: {e}"))?;
        create_private_dir(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let path = self.dir.join(name);
        write_private(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_current_context_with_inline_ca_and_token_file() {
        let dir = tempfile::tempdir().unwrap();
        let ca = base64::engine::general_purpose::STANDARD.encode("PEM CA");
        let config = format!(
            "apiVersion: v1\ncurrent-context: b\nclusters:\n- name: c1\n  cluster:\n    server: https://127.0.0.1:6443/\n    certificate-authority-data: {ca}\n- name: c2\n  cluster:\n    server: https://127.0.0.2:6443\ncontexts:\n- name: a\n  context: {{cluster: c2, user: u}}\n- name: b\n  context: {{cluster: c1, user: u}}\nusers:\n- name: u\n  user:\n    tokenFile: token\n"
        );
        let path = dir.path().join("kubeconfig");
        std::fs::write(&path, config).unwrap();
        let endpoint = kubeconfig(&path).unwrap();
        assert_eq!(endpoint.base, "https://127.0.0.1:6443");
        assert_eq!(endpoint.auth, ApiAuth::BearerFile(dir.path().join("token")));
        let ca_file = endpoint.tls.ca_file.unwrap();
        assert_eq!(std::fs::read_to_string(ca_file).unwrap(), "PEM CA");
    }

    #[test]
    fn kubeconfig_refuses_exec_plugins_and_missing_contexts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        std::fs::write(
            &path,
            "current-context: x\nclusters: [{name: c, cluster: {server: 'https://h'}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {exec: {command: aws}}}]\n",
        )
        .unwrap();
        let e = kubeconfig(&path).unwrap_err();
        assert!(e.contains("exec and auth-provider"), "{e}");
        std::fs::write(&path, "current-context: y\n").unwrap();
        let e = kubeconfig(&path).unwrap_err();
        assert!(e.contains("context \"y\" not found"), "{e}");
    }

    #[test]
    fn in_cluster_needs_the_environment_and_reads_the_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let e = in_cluster(None, None, dir.path(), false).unwrap_err();
        assert!(e.contains("KUBERNETES_SERVICE_HOST"), "{e}");
        std::fs::write(dir.path().join("token"), "t").unwrap();
        std::fs::write(dir.path().join("namespace"), "monitoring").unwrap();
        let endpoint =
            in_cluster(Some("fd00::1".into()), Some("443".into()), dir.path(), true).unwrap();
        assert_eq!(endpoint.base, "https://[fd00::1]:443");
        assert_eq!(endpoint.own_namespace.as_deref(), Some("monitoring"));
        assert_eq!(endpoint.auth, ApiAuth::BearerFile(dir.path().join("token")));
    }
}
