//! Installs the wordpress graph on an in-process sandbox running the hub, creates
//! a typed instance and waits until it is ready.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let status = kro_sdk_examples::run_on_sandbox("sdk-wordpress", |client| async move {
        kro_sdk_examples::wordpress::demo(client, "demo").await
    })
    .await?;
    println!("ready: {status:#?}");
    Ok(())
}
