//! Fills a store's revocation feed with N revoked JWT ids for one audience (as N revocations
//! at `/connect/revoke` would), so the guard's cost with a large revocation set can be
//! measured. `seed_revocations --data-dir D --audience AUD --n N`

use tessera_store::Store;
use tessera_types::{ClientId, Jti, Resource, UnixTime};

#[tokio::main]
async fn main() {
    let opts = tessera_bench::named_args();
    let store = Store::open_existing_embedded(std::path::Path::new(&opts["data-dir"])).await.unwrap();
    let audience = [Resource::new(opts["audience"].clone()).unwrap()];
    let n: usize = opts["n"].parse().unwrap();
    let now = UnixTime(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64);
    let client = ClientId::new("seeded").unwrap();
    // Ten at a time: each is its own transaction, as at the endpoint.
    for chunk in (0..n).collect::<Vec<_>>().chunks(10) {
        let writes = chunk.iter().map(|i| {
            let (store, client, audience) = (store.clone(), client.clone(), audience.clone());
            async move {
                let jti = Jti::new(format!("seeded-{i:08}")).unwrap();
                store.revoke_jti(&jti, &client, UnixTime(now.0 + 3600), &audience, now).await.unwrap();
            }
        });
        futures_util::future::join_all(writes).await;
    }
    println!("{n} revocations recorded; feed at {:?}", store.latest_event().await.unwrap());
}
