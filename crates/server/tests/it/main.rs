//! Integration tests: the real service on a loopback port, on a fresh SQLite
//! file and on a fresh database of the PostgreSQL server that ./test.sh starts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod audit;
mod auth;
mod ballot;
mod capacity;
mod cli;
mod console;
mod console_production;
mod crash;
mod keys;
mod mail;
mod nodes;
mod payments;
mod production;
mod proxy;
mod registry;
mod reseat;
mod sealed;
mod shares;
mod simulate;
mod support;
mod vendors;
mod workflow;

/// Runs an `async fn(TestDb)` test on both databases.
#[macro_export]
macro_rules! both_databases {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use pasaporte_store::testing::TestDb;
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::$name(TestDb::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    super::$name(TestDb::Postgres).await
                }
            }
        )*
    };
}
