//! `tessera init`: creates the store (the SQLite database in the data dir, or the tables in
//! PostgreSQL), the key-encryption key and the signing keys, without serving. Idempotent:
//! on an existing store it checks the key-encryption key (and adds a signing key only for a
//! configured algorithm that has none).

use tessera_server::keys::{self, KekUse};
use tessera_server::{FileConfig, Overrides, Settings};
use tessera_store::Store;

use super::{CliResult, now, rng};

pub async fn run(overrides: Overrides, file: FileConfig) -> CliResult {
    let settings = Settings::resolve(overrides, file)?;
    let existing = match &settings.database_url {
        Some(url) => Store::connect_existing_postgres(url.expose(), settings.database_pool_size).await.ok(),
        None => Store::open_existing_embedded(&settings.data_dir).await.ok(),
    };
    let created = existing.is_none();
    let store = match existing {
        Some(store) => store,
        None => tessera_server::open_store(&settings).await?,
    }
    .acting_as(super::cli_actor(), std::sync::Arc::new(tessera_server::clock::SystemClock));
    let kek = keys::open_kek(&store, &settings.kek_file, KekUse::Server, &rng(), now()).await?;
    keys::ensure_active(&store, &kek, &settings.signing_algs, &rng(), now()).await?;
    let place = match &settings.database_url {
        Some(url) => format!("PostgreSQL {}", url.redacted()),
        None => format!("data dir {}", settings.data_dir.display()),
    };
    if created {
        println!("initialised a Tessera store in {place}");
    } else {
        println!("a Tessera store already exists in {place}; its key-encryption key and signing keys are checked");
    }
    println!("key-encryption key: {} (id {})", settings.kek_file.display(), kek.id());
    println!("  back it up and keep it secret: it opens every signing key, and every instance needs this same file");
    store.close().await;
    Ok(())
}
