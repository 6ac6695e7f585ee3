const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A Redis key namespace of its own for one test; its keys are deleted when dropped.
#[derive(Debug)]
pub struct TestRedis {
    url: String,
    prefix: String,
}

impl TestRedis {
    pub fn new() -> Self {
        let url = std::env::var("TEST_REDIS_URL")
            .or_else(|_| std::env::var("REDIS_URL"))
            .unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned());
        let prefix = format!("gad-test:{}:", uuid::Uuid::now_v7().simple());
        Self { url, prefix }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl Default for TestRedis {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let url = self.url.clone();
        let pattern = format!("{}*", self.prefix);
        let cleanup = std::thread::spawn(move || -> redis::RedisResult<()> {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async move {
                let client = redis::Client::open(url)?;
                let mut conn = client.get_multiplexed_async_connection().await?;
                let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query_async(&mut conn).await?;
                if !keys.is_empty() {
                    redis::cmd("DEL").arg(keys).query_async::<()>(&mut conn).await?;
                }
                Ok(())
            })
        });
        // A Redis that a test stopped on purpose has nothing left to clean.
        let _ = cleanup.join();
    }
}
