//! The `kro-hub` command.

fn main() -> anyhow::Result<()> {
    Ok(())
}
