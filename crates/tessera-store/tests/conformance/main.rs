//! The storage conformance suite: the same cases against every backend — embedded SQLite and
//! a real PostgreSQL (started by the harness, or `TESSERA_TEST_POSTGRES_URL`). Without
//! PostgreSQL the PostgreSQL half says SKIPPED on stderr, unless TESSERA_REQUIRE_POSTGRES=1.

mod cases;

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = tessera_store::Store::open_embedded(dir.path()).await.unwrap();
                    crate::cases::$case(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(store) = tessera_testkit::postgres::postgres_store(stringify!($case)).await else { return };
                    assert_eq!(store.backend(), tessera_store::Backend::Postgres);
                    crate::cases::$case(store).await;
                }
            )*
        }
    };
}

conformance!(
    registry_scopes,
    registry_clients,
    secrets,
    keys_one_active_per_algorithm,
    concurrent_first_keys_agree_on_one,
    reference_tokens,
    group_commit_under_concurrency,
    revocations,
    pruning,
    concurrent_writers_lose_nothing,
    kek_check_first_writer_wins,
    client_assertion_jtis_are_used_once_and_pruned,
    client_assertion_jtis_group_commit_one_outcome_per_row,
    client_keys_and_auth_method_round_trip,
    mutual_tls_registration_and_bound_tokens_round_trip,
    client_jwks_uri_round_trips_and_replaces_the_key_set,
    revocation_events_are_recorded_in_order_filtered_and_pruned,
    trusts_and_rules_round_trip_in_order_and_go_together,
    uses_are_counted_to_their_bound_under_concurrency,
    reference_tokens_keep_their_workload,
    audit_entries_are_recorded_with_their_change_in_order_and_pruned,
    clients_read_on_the_embedded_connection_equal_list_clients,
    live_token_counts_cover_the_capped_clients_only,
    reference_tokens_need_handle_and_hash,
    secrets_last_use_is_written_in_chunks_and_never_moves_back,
);
