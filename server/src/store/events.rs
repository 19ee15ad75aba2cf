//! The event journal (the newest events, numbered) and the HTTP callback subscriptions.
//!
//! Neither goes through [`Store::commit`]: events are journaled after they are published, in
//! batches of their own, and a subscriber's progress is written by its delivery task. Losing
//! the last moments of either to a crash means events re-sent, never a change lost.

use super::{value_rows, Result, Store, ROWS_PER_STATEMENT};
use sqlx::Row;

/// A stored callback subscription.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSubscription {
    pub callback_url: String,
    pub client_ip: String,
    /// Milliseconds since the epoch.
    pub subscribed_at: i64,
    /// The number of the last event the subscriber was sent.
    pub delivered: u64,
    /// Whether it takes arrays of events.
    pub batch: bool,
}

impl Store {
    /// Appends journaled events (`seq`, JSON) and forgets those numbered below `keep_from`.
    pub async fn journal_events(&self, events: &[(u64, String)], keep_from: u64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for chunk in events.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO event_journal (seq, data) VALUES {} ON CONFLICT (seq) DO NOTHING",
                value_rows(chunk.len(), 2)
            );
            let mut query = sqlx::query(&sql);
            for (seq, data) in chunk {
                query = query.bind(*seq as i64).bind(data.as_str());
            }
            query.execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM event_journal WHERE seq < $1")
            .bind(keep_from as i64)
            .execute(&mut *tx)
            .await?;
        self.finish_write(tx).await
    }

    /// The newest `limit` journaled events, oldest first.
    pub async fn journaled_events(&self, limit: usize) -> Result<Vec<(u64, String)>> {
        let rows = sqlx::query("SELECT seq, data FROM event_journal ORDER BY seq DESC LIMIT $1")
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        let mut events = rows
            .iter()
            .map(|row| Ok((row.try_get::<i64, _>(0)? as u64, row.try_get(1)?)))
            .collect::<Result<Vec<_>>>()?;
        events.reverse();
        Ok(events)
    }

    pub async fn subscriptions(&self) -> Result<Vec<StoredSubscription>> {
        let rows = sqlx::query(
            "SELECT callback_url, client_ip, subscribed_at, delivered, batch FROM event_subscriptions \
             ORDER BY subscribed_at, callback_url",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredSubscription {
                    callback_url: row.try_get(0)?,
                    client_ip: row.try_get(1)?,
                    subscribed_at: row.try_get(2)?,
                    delivered: row.try_get::<i64, _>(3)? as u64,
                    batch: row.try_get::<i64, _>(4)? != 0,
                })
            })
            .collect()
    }

    /// Stores a subscription unless its URL is already subscribed; whether it was new.
    pub async fn add_subscription(&self, subscription: &StoredSubscription) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let added = sqlx::query(
            "INSERT INTO event_subscriptions (callback_url, client_ip, subscribed_at, delivered, batch) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (callback_url) DO NOTHING",
        )
        .bind(&subscription.callback_url)
        .bind(&subscription.client_ip)
        .bind(subscription.subscribed_at)
        .bind(subscription.delivered as i64)
        .bind(i64::from(subscription.batch))
        .execute(&mut *tx)
        .await?;
        self.finish_write(tx).await?;
        Ok(added.rows_affected() == 1)
    }

    /// Removes a subscription; whether there was one.
    pub async fn remove_subscription(&self, callback_url: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let removed = sqlx::query("DELETE FROM event_subscriptions WHERE callback_url = $1")
            .bind(callback_url)
            .execute(&mut *tx)
            .await?;
        self.finish_write(tx).await?;
        Ok(removed.rows_affected() == 1)
    }

    /// Records how far a subscriber has been sent events.
    pub async fn subscription_delivered(&self, callback_url: &str, delivered: u64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE event_subscriptions SET delivered = $1 WHERE callback_url = $2")
            .bind(delivered as i64)
            .bind(callback_url)
            .execute(&mut *tx)
            .await?;
        self.finish_write(tx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn journal_keeps_the_newest_and_subscriptions_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        for url in crate::store::testing::store_urls(dir.path()).await {
            journal_and_subscriptions_on(&url).await;
        }
    }

    async fn journal_and_subscriptions_on(url: &str) {
        let store = Store::open(url).await.unwrap();
        let events: Vec<(u64, String)> = (1..=700).map(|n| (n, format!("{{\"n\":{n}}}"))).collect();
        store.journal_events(&events, 650).await.unwrap();
        let kept = store.journaled_events(10).await.unwrap();
        assert_eq!(kept.first().unwrap().0, 691);
        assert_eq!(kept.last().unwrap(), &(700, "{\"n\":700}".to_string()));
        assert_eq!(store.journaled_events(1000).await.unwrap().len(), 51);

        let subscription = StoredSubscription {
            callback_url: "http://127.0.0.1:1/cb".into(),
            client_ip: "127.0.0.1".into(),
            subscribed_at: 5,
            delivered: 700,
            batch: true,
        };
        assert!(store.add_subscription(&subscription).await.unwrap());
        assert!(!store.add_subscription(&subscription).await.unwrap());
        store
            .subscription_delivered(&subscription.callback_url, 705)
            .await
            .unwrap();
        let stored = store.subscriptions().await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].delivered, 705);
        assert!(stored[0].batch);
        assert!(store
            .remove_subscription(&subscription.callback_url)
            .await
            .unwrap());
        assert!(!store
            .remove_subscription(&subscription.callback_url)
            .await
            .unwrap());
        assert!(store.subscriptions().await.unwrap().is_empty());
    }
}
