//! A member's kubeconfig, from its Secret to a client configuration. The
//! Secret's content never appears in a message: errors say what is wrong
//! with it, never what it holds.

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::Health;

/// The client configuration in `text` (a kubeconfig), or why there is none.
/// Exec and auth-provider plugins are refused: they run programs on the hub
/// and their credentials cannot be rotated through the Secret.
pub async fn config_from(text: &str, at: &str) -> Result<kube::Config, Health> {
    let kubeconfig = Kubeconfig::from_yaml(text).map_err(|_| {
        Health::InvalidKubeconfig(format!("{at} does not hold a kubeconfig that parses"))
    })?;
    let context_name = kubeconfig.current_context.clone();
    let context = kubeconfig
        .contexts
        .iter()
        .find(|c| Some(&c.name) == context_name.as_ref())
        .or(kubeconfig.contexts.first())
        .and_then(|c| c.context.as_ref());
    let user = context.and_then(|c| c.user.as_ref());
    let auth = kubeconfig
        .auth_infos
        .iter()
        .find(|a| Some(&a.name) == user)
        .and_then(|a| a.auth_info.as_ref());
    // Files named in a member's kubeconfig would be read on the hub: a
    // `tokenFile` pointing at the hub's own ServiceAccount token would send
    // it to whatever server the kubeconfig names.
    let cluster_name = context.map(|c| c.cluster.clone());
    let files_in_cluster = kubeconfig
        .clusters
        .iter()
        .filter(|c| Some(&c.name) == cluster_name.as_ref())
        .filter_map(|c| c.cluster.as_ref())
        .any(|c| c.certificate_authority.is_some());
    let files_in_user = auth.is_some_and(|a| {
        a.token_file.is_some() || a.client_certificate.is_some() || a.client_key.is_some()
    });
    if files_in_cluster || files_in_user {
        return Err(Health::InvalidKubeconfig(format!(
            "{at}: the kubeconfig names files (certificate-authority, client-certificate, \
             client-key or tokenFile), which would be read on the hub; inline them \
             (certificate-authority-data, client-certificate-data, client-key-data, token)"
        )));
    }
    if let Some(auth) = auth {
        if auth.exec.is_some() {
            return Err(Health::InvalidKubeconfig(format!(
                "{at}: exec credential plugins are not supported on members (they would run a \
                 program on the hub); use a bearer token or a client certificate"
            )));
        }
        if auth.auth_provider.is_some() {
            return Err(Health::InvalidKubeconfig(format!(
                "{at}: auth-provider plugins are not supported on members; use a bearer token \
                 or a client certificate"
            )));
        }
    }
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|_| {
            Health::InvalidKubeconfig(format!(
                "{at} holds a kubeconfig without a usable cluster, context and user"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN_CONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: m
  cluster: {server: 'http://127.0.0.1:1'}
users:
- name: u
  user: {token: very-secret-token}
contexts:
- name: c
  context: {cluster: m, user: u}
current-context: c
";

    #[tokio::test]
    async fn bearer_tokens_work_and_exec_plugins_are_refused() {
        let config = config_from(TOKEN_CONFIG, "Secret kro-system/m")
            .await
            .unwrap();
        assert_eq!(config.cluster_url.to_string(), "http://127.0.0.1:1/");
        let exec = TOKEN_CONFIG.replace(
            "user: {token: very-secret-token}",
            "user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: steal}}",
        );
        let Err(Health::InvalidKubeconfig(message)) =
            config_from(&exec, "Secret kro-system/m").await
        else {
            panic!("exec plugin accepted");
        };
        assert!(
            message.contains("exec credential plugins are not supported"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn files_on_the_hub_are_never_read_for_a_member() {
        let token_file = TOKEN_CONFIG.replace(
            "user: {token: very-secret-token}",
            "user: {tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token}",
        );
        let Err(Health::InvalidKubeconfig(message)) = config_from(&token_file, "Secret s").await
        else {
            panic!("a tokenFile was accepted");
        };
        assert!(message.contains("names files"), "{message}");
        let ca_file = TOKEN_CONFIG.replace(
            "cluster: {server: 'http://127.0.0.1:1'}",
            "cluster: {server: 'https://evil', certificate-authority: /etc/ssl/ca.pem}",
        );
        assert!(config_from(&ca_file, "Secret s").await.is_err());
    }

    #[tokio::test]
    async fn errors_never_quote_the_secret() {
        let broken = format!("{TOKEN_CONFIG}\n  : [unbalanced very-secret-token");
        let Err(health) = config_from(&broken, "Secret kro-system/m").await else {
            panic!("a broken kubeconfig parsed");
        };
        assert!(
            !health.message().contains("very-secret-token"),
            "{health:?}"
        );
    }
}
