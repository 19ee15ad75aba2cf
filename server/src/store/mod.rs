//! The store: the single source of truth, in SQLite (a file under the data dir) or Postgres.
//!
//! Everything is written through [`Store::commit`], one transaction per batch of changes, so a
//! crash never leaves half of a change behind. The SQL is shared by both backends (`$n`
//! placeholders and `ON CONFLICT` work in both).
//!
//! A leader's store is *fenced* ([`Store::fenced`]): each of its write transactions ends by
//! checking, under a row lock, that its term still holds the lease, so a Stride that has lost
//! the leadership can never write again, however late its writes arrive.
//!
//! - [`events`]: the event journal and the callback subscriptions, written beside the commits.
//! - [`leadership`]: the lease row and the advisory lock the election is made of (Postgres).

mod events;
pub mod leadership;

pub use events::StoredSubscription;

use crate::scheduler::deployment::Deployment;
use crate::scheduler::instance::Instance;
use app::model::{AppDefinition, GroupDefinition, Timestamp};
use serde::{Deserialize, Serialize};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::str::FromStr;
use std::sync::Arc;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored document is not valid: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error(
        "unsupported store url {0}: use sqlite://PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DB"
    )]
    Url(String),
    #[error("the leadership of term {0} has ended; this Stride no longer writes")]
    Fenced(i64),
    #[error("only a Postgres store holds an election")]
    NoElection,
}

pub type Result<T> = std::result::Result<T, Error>;

/// How many versions of an app are kept (Marathon's `--zk_max_versions`).
pub const MAX_VERSIONS: i64 = 50;

/// Rows written by one multi-row statement: 300 rows of three values stay below the 999
/// parameters that older SQLite builds allow.
const ROWS_PER_STATEMENT: usize = 300;

/// `$a, $a+1, …` for the parameter numbers in `numbers`.
fn parameters(numbers: impl Iterator<Item = usize>) -> String {
    numbers
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, $2, $3), ($4, $5, $6), …`: `rows` rows of `columns` parameters each.
fn value_rows(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| format!("({})", parameters(row * columns + 1..=(row + 1) * columns)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    fence: Option<Fence>,
}

/// Which database a store is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The term a leader's writes must still hold, and whom to tell when one finds it does not.
#[derive(Clone)]
struct Fence {
    term: i64,
    lost: Arc<watch::Sender<bool>>,
}

/// Everything the scheduler needs at start.
#[derive(Debug, Default)]
pub struct Loaded {
    pub apps: Vec<AppDefinition>,
    /// Older definitions that instances still run.
    pub versions: Vec<AppDefinition>,
    pub instances: Vec<Instance>,
    pub deployments: Vec<Deployment>,
    pub groups: Vec<GroupDefinition>,
    pub framework_id: Option<String>,
}

/// The whole tree at one moment (Marathon's root group version): its groups, and which
/// version each app had.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RootVersion {
    pub version: Timestamp,
    pub groups: Vec<GroupDefinition>,
    pub apps: Vec<(String, Timestamp)>,
}

/// One transaction's worth of changes.
#[derive(Debug, Default)]
pub struct Batch {
    pub apps_put: Vec<AppDefinition>,
    /// Apps new in this batch: versions left by an earlier app of the same id are dropped.
    pub apps_created: Vec<String>,
    pub apps_deleted: Vec<String>,
    pub groups_put: Vec<GroupDefinition>,
    pub groups_deleted: Vec<String>,
    pub root_version: Option<RootVersion>,
    pub instances_put: Vec<Instance>,
    pub instances_deleted: Vec<String>,
    pub deployments_put: Vec<Deployment>,
    pub deployments_deleted: Vec<String>,
    pub framework_id: Option<String>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.apps_put.is_empty()
            && self.apps_deleted.is_empty()
            && self.instances_put.is_empty()
            && self.instances_deleted.is_empty()
            && self.deployments_put.is_empty()
            && self.deployments_deleted.is_empty()
            && self.groups_put.is_empty()
            && self.groups_deleted.is_empty()
            && self.root_version.is_none()
            && self.framework_id.is_none()
    }
}

impl Store {
    /// Opens (creating if needed) and migrates the store at `url`: `sqlite://PATH` or `postgres://…`.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(url)?;
        let is_sqlite = backend == Backend::Sqlite;
        let pool = AnyPoolOptions::new()
            .max_connections(if is_sqlite { 4 } else { 8 })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if is_sqlite {
                        // WAL lets the API read while the scheduler writes; NORMAL sync is durable
                        // across process crashes (the failure this store must survive).
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 5000")
                            .execute(&mut *conn)
                            .await?;
                    } else {
                        leadership::limit_idle_transactions(conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(&sqlite_create_url(url))
            .await?;
        if is_sqlite {
            sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        } else {
            sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        }
        Ok(Store {
            pool,
            backend,
            fence: None,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// This store for the leader of `term`: its writes fail with [`Error::Fenced`] once the
    /// term no longer holds the lease, and the returned receiver turns `true` then.
    pub fn fenced(&self, term: i64) -> (Store, watch::Receiver<bool>) {
        let (lost, lost_rx) = watch::channel(false);
        let store = Store {
            fence: Some(Fence {
                term,
                lost: Arc::new(lost),
            }),
            ..self.clone()
        };
        (store, lost_rx)
    }

    /// Starts a write transaction; end it with [`Store::finish_write`].
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(self.pool.begin().await?)
    }

    /// Commits a write transaction, unless this store is fenced and its term has lost the
    /// lease. The check holds the lease row (`FOR SHARE`) until the commit, so no other
    /// Stride can take the lease between the check and the commit.
    async fn finish_write(&self, mut tx: sqlx::Transaction<'static, sqlx::Any>) -> Result<()> {
        if let Some(fence) = &self.fence {
            let holds = sqlx::query(&format!(
                "SELECT term FROM leadership WHERE id = 1 AND term = $1 AND expires_at > {} FOR SHARE",
                leadership::NOW_MS
            ))
            .bind(fence.term)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
            if !holds {
                let _ = fence.lost.send(true);
                return Err(Error::Fenced(fence.term));
            }
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn load(&self) -> Result<Loaded> {
        let mut loaded = Loaded {
            apps: self.documents("SELECT definition FROM apps").await?,
            instances: self.documents("SELECT data FROM instances").await?,
            deployments: self.documents("SELECT data FROM deployments").await?,
            groups: self.documents("SELECT data FROM groups").await?,
            ..Loaded::default()
        };
        let current: std::collections::BTreeSet<(&str, Timestamp)> = loaded
            .apps
            .iter()
            .map(|a| (a.id.as_str(), a.version))
            .collect();
        let older: std::collections::BTreeSet<(String, Timestamp)> = loaded
            .instances
            .iter()
            .filter(|i| !current.contains(&(i.app_id.as_str(), i.app_version)))
            .map(|i| (i.app_id.clone(), i.app_version))
            .collect();
        for (app_id, version) in older {
            if let Some(app) = self.app_version(&app_id, version).await? {
                loaded.versions.push(app);
            }
        }
        loaded.framework_id = sqlx::query("SELECT value FROM framework WHERE key = 'framework_id'")
            .fetch_optional(&self.pool)
            .await?
            .map(|row: AnyRow| row.try_get::<String, _>(0))
            .transpose()?;
        Ok(loaded)
    }

    /// The JSON documents a query selects (one column), parsed.
    async fn documents<T: serde::de::DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>> {
        sqlx::query(sql)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| Ok(serde_json::from_str(&row.try_get::<String, _>(0)?)?))
            .collect()
    }

    pub async fn commit(&self, batch: &Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for id in &batch.apps_created {
            sqlx::query("DELETE FROM app_versions WHERE app_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        for app in &batch.apps_put {
            let json = serde_json::to_string(app)?;
            let version = app.version.to_string();
            sqlx::query(
                "INSERT INTO apps (id, version, definition) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version, definition = excluded.definition",
            )
            .bind(&app.id)
            .bind(&version)
            .bind(&json)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO app_versions (app_id, version, definition) VALUES ($1, $2, $3) \
                 ON CONFLICT (app_id, version) DO NOTHING",
            )
            .bind(&app.id)
            .bind(&version)
            .bind(&json)
            .execute(&mut *tx)
            .await?;
            // Timestamps in this format sort chronologically as text.
            sqlx::query(
                "DELETE FROM app_versions WHERE app_id = $1 AND version NOT IN \
                 (SELECT version FROM app_versions WHERE app_id = $2 ORDER BY version DESC LIMIT $3)",
            )
            .bind(&app.id)
            .bind(&app.id)
            .bind(MAX_VERSIONS)
            .execute(&mut *tx)
            .await?;
        }
        // A deleted app's versions stay (at most MAX_VERSIONS of them): a group rolled back to
        // a version from before the deletion brings the app back.
        for id in &batch.apps_deleted {
            sqlx::query("DELETE FROM apps WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let groups = batch
            .groups_put
            .iter()
            .map(|g| Ok((g.id.clone(), serde_json::to_string(g)?)))
            .collect::<Result<Vec<_>>>()?;
        put_documents(&mut tx, "groups", "id", groups).await?;
        delete_documents(&mut tx, "groups", &batch.groups_deleted).await?;
        if let Some(root) = &batch.root_version {
            let row = (root.version.to_string(), serde_json::to_string(root)?);
            put_documents(&mut tx, "root_versions", "version", vec![row]).await?;
            sqlx::query(
                "DELETE FROM root_versions WHERE version NOT IN \
                 (SELECT version FROM root_versions ORDER BY version DESC LIMIT $1)",
            )
            .bind(MAX_VERSIONS)
            .execute(&mut *tx)
            .await?;
        }
        // Many rows per statement: each statement is a round trip to the database's worker, and a
        // burst of status updates writes hundreds of instances in one batch.
        for chunk in batch.instances_put.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO instances (id, app_id, data) VALUES {} \
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                value_rows(chunk.len(), 3)
            );
            let mut query = sqlx::query(&sql);
            for instance in chunk {
                query = query
                    .bind(&instance.id)
                    .bind(&instance.app_id)
                    .bind(serde_json::to_string(instance)?);
            }
            query.execute(&mut *tx).await?;
        }
        for chunk in batch.instances_deleted.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "DELETE FROM instances WHERE id IN ({})",
                parameters(1..=chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            query.execute(&mut *tx).await?;
        }
        let deployments = batch
            .deployments_put
            .iter()
            .map(|d| Ok((d.id.clone(), serde_json::to_string(d)?)))
            .collect::<Result<Vec<_>>>()?;
        put_documents(&mut tx, "deployments", "id", deployments).await?;
        delete_documents(&mut tx, "deployments", &batch.deployments_deleted).await?;
        if let Some(framework_id) = &batch.framework_id {
            sqlx::query(
                "INSERT INTO framework (key, value) VALUES ('framework_id', $1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(framework_id)
            .execute(&mut *tx)
            .await?;
        }
        self.finish_write(tx).await
    }

    /// The stored versions of an app, newest first.
    pub async fn app_versions(&self, app_id: &str) -> Result<Vec<Timestamp>> {
        let rows =
            sqlx::query("SELECT version FROM app_versions WHERE app_id = $1 ORDER BY version DESC")
                .bind(app_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .iter()
            .filter_map(|row| Timestamp::from_str(&row.try_get::<String, _>(0).ok()?).ok())
            .collect())
    }

    pub async fn app_version(
        &self,
        app_id: &str,
        version: Timestamp,
    ) -> Result<Option<AppDefinition>> {
        let row =
            sqlx::query("SELECT definition FROM app_versions WHERE app_id = $1 AND version = $2")
                .bind(app_id)
                .bind(version.to_string())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| Ok(serde_json::from_str(&row.try_get::<String, _>(0)?)?))
            .transpose()
    }
}

impl Store {
    /// The stored versions of the whole tree, newest first.
    pub async fn root_versions(&self) -> Result<Vec<RootVersion>> {
        self.documents("SELECT data FROM root_versions ORDER BY version DESC")
            .await
    }

    /// The tree as it was at `version`, with the app definitions of then (apps whose
    /// definition of then is no longer stored are left out).
    pub async fn tree_at(
        &self,
        version: Timestamp,
    ) -> Result<Option<(Vec<GroupDefinition>, Vec<AppDefinition>)>> {
        let Some(row) = sqlx::query("SELECT data FROM root_versions WHERE version = $1")
            .bind(version.to_string())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let root: RootVersion = serde_json::from_str(&row.try_get::<String, _>(0)?)?;
        let mut apps = Vec::new();
        for (id, app_version) in &root.apps {
            match self.app_version(id, *app_version).await? {
                Some(app) => apps.push(app),
                None => {
                    tracing::warn!(app = %id, version = %app_version, "an app of a stored group version is no longer stored")
                }
            }
        }
        Ok(Some((root.groups, apps)))
    }
}

/// Writes rows of a table of JSON documents (`key`, `data`), replacing those with the same key.
async fn put_documents(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    table: &str,
    key: &str,
    rows: Vec<(String, String)>,
) -> Result<()> {
    let sql = format!(
        "INSERT INTO {table} ({key}, data) VALUES ($1, $2) \
         ON CONFLICT ({key}) DO UPDATE SET data = excluded.data"
    );
    for (id, data) in rows {
        sqlx::query(&sql)
            .bind(id)
            .bind(data)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Deletes rows of a table of JSON documents keyed by `id`.
async fn delete_documents(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    table: &str,
    ids: &[String],
) -> Result<()> {
    let sql = format!("DELETE FROM {table} WHERE id = $1");
    for id in ids {
        sqlx::query(&sql).bind(id).execute(&mut **tx).await?;
    }
    Ok(())
}

impl Backend {
    fn of(url: &str) -> Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(Error::Url(url.to_string()))
        }
    }
}

/// Creates an empty database on the Postgres server `admin_url` points at (a database there
/// that this user may connect to) and returns the URL of the new one: a store of its own for a
/// test or a benchmark.
pub async fn create_postgres_database(admin_url: &str) -> Result<String> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let (server, _) = admin_url
        .rsplit_once('/')
        .ok_or_else(|| Error::Url(admin_url.to_string()))?;
    let name = format!("stride_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::AnyConnection::connect(admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    Ok(format!("{server}/{name}"))
}

/// SQLite only creates a missing database file when asked to (`mode=rwc`).
fn sqlite_create_url(url: &str) -> String {
    if url.starts_with("sqlite:") && !url.contains("mode=") {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}mode=rwc")
    } else {
        url.to_string()
    }
}

/// Fresh stores for tests, on both backends.
#[cfg(test)]
pub(crate) mod testing {
    /// Where `cargo xtask test` puts the URL of its throwaway Postgres.
    pub const TEST_POSTGRES: &str = "STRIDE_TEST_POSTGRES";

    /// A URL of a new, empty Postgres database on the test cluster.
    pub async fn postgres_url() -> String {
        let admin = std::env::var(TEST_POSTGRES).unwrap_or_else(|_| {
            panic!("{TEST_POSTGRES} is not set: run the tests with `cargo xtask test`, which starts a throwaway Postgres")
        });
        super::create_postgres_database(&admin)
            .await
            .expect("a database on the test Postgres")
    }

    /// URLs of two new, empty stores: a SQLite file in `dir`, and a Postgres database.
    pub async fn store_urls(dir: &std::path::Path) -> Vec<String> {
        vec![
            format!("sqlite://{}/stride.db", dir.display()),
            postgres_url().await,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::instance::Condition;
    use crate::scheduler::testing::{app_with, instance};
    use app::model::GroupDefinition;

    #[tokio::test]
    async fn commits_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        for url in testing::store_urls(dir.path()).await {
            commits_and_loads_back_on(&url).await;
        }
    }

    async fn commits_and_loads_back_on(url: &str) {
        let store = Store::open(url).await.unwrap();
        let app = app_with(2, 10);
        let i = instance(&app, "a", Condition::Running, 5);
        store
            .commit(&Batch {
                apps_put: vec![app.clone()],
                instances_put: vec![i.clone()],
                framework_id: Some("fw-1".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut scaled = app.clone();
        scaled.version = Timestamp::from_millis(20);
        store
            .commit(&Batch {
                apps_put: vec![scaled.clone()],
                ..Default::default()
            })
            .await
            .unwrap();
        let reopened = Store::open(url).await.unwrap();
        let loaded = reopened.load().await.unwrap();
        assert_eq!(loaded.apps, vec![scaled.clone()]);
        assert_eq!(loaded.instances, vec![i]);
        assert_eq!(loaded.framework_id.as_deref(), Some("fw-1"));
        assert_eq!(
            reopened.app_versions(&app.id).await.unwrap(),
            vec![scaled.version, app.version]
        );
        assert_eq!(
            reopened.app_version(&app.id, app.version).await.unwrap(),
            Some(app.clone())
        );
        reopened
            .commit(&Batch {
                apps_deleted: vec![app.id.clone()],
                instances_deleted: vec![loaded.instances[0].id.clone()],
                ..Default::default()
            })
            .await
            .unwrap();
        let loaded = reopened.load().await.unwrap();
        assert!(loaded.apps.is_empty() && loaded.instances.is_empty());
        assert_eq!(
            reopened.app_versions(&app.id).await.unwrap().len(),
            2,
            "a deleted app's versions stay for group rollbacks"
        );
        let mut again = app.clone();
        again.version = Timestamp::from_millis(30);
        reopened
            .commit(&Batch {
                apps_created: vec![app.id.clone()],
                apps_put: vec![again.clone()],
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            reopened.app_versions(&app.id).await.unwrap(),
            vec![again.version],
            "an app created anew starts its own history"
        );
    }

    #[tokio::test]
    async fn groups_and_versions_of_the_tree_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        for url in testing::store_urls(dir.path()).await {
            groups_and_versions_of_the_tree_round_trip_on(&url).await;
        }
    }

    async fn groups_and_versions_of_the_tree_round_trip_on(url: &str) {
        let store = Store::open(url).await.unwrap();
        let app = app_with(1, 10);
        let group = GroupDefinition {
            id: "/prod".into(),
            dependencies: vec!["/db".into()],
            enforce_role: false,
            version: Timestamp::from_millis(10),
        };
        let root = RootVersion {
            version: Timestamp::from_millis(10),
            groups: vec![group.clone()],
            apps: vec![(app.id.clone(), app.version)],
        };
        store
            .commit(&Batch {
                apps_put: vec![app.clone()],
                groups_put: vec![group.clone()],
                root_version: Some(root.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(store.load().await.unwrap().groups, vec![group.clone()]);
        assert_eq!(store.root_versions().await.unwrap(), vec![root.clone()]);
        assert_eq!(
            store.tree_at(root.version).await.unwrap(),
            Some((vec![group], vec![app]))
        );
        assert_eq!(
            store.tree_at(Timestamp::from_millis(11)).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn bursts_larger_than_one_statement_are_written_and_deleted_whole() {
        let dir = tempfile::tempdir().unwrap();
        for url in testing::store_urls(dir.path()).await {
            bursts_are_written_and_deleted_whole_on(&url).await;
        }
    }

    async fn bursts_are_written_and_deleted_whole_on(url: &str) {
        let store = Store::open(url).await.unwrap();
        let app = app_with(700, 10);
        let instances: Vec<Instance> = (0..700)
            .map(|n| instance(&app, &format!("i{n}"), Condition::Running, n))
            .collect();
        store
            .commit(&Batch {
                apps_put: vec![app.clone()],
                instances_put: instances.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut loaded = store.load().await.unwrap().instances;
        loaded.sort_by(|a, b| a.id.cmp(&b.id));
        let mut expected = instances.clone();
        expected.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(loaded, expected);

        let deleted: Vec<String> = instances[..650].iter().map(|i| i.id.clone()).collect();
        store
            .commit(&Batch {
                instances_deleted: deleted,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut left: Vec<String> = store
            .load()
            .await
            .unwrap()
            .instances
            .into_iter()
            .map(|i| i.id)
            .collect();
        left.sort();
        let mut expected: Vec<String> = instances[650..].iter().map(|i| i.id.clone()).collect();
        expected.sort();
        assert_eq!(left, expected);
    }

    #[test]
    fn value_rows_number_parameters_row_by_row() {
        assert_eq!(value_rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(parameters(1..=2), "$1, $2");
    }
}
