//! Concurrent borrow/return against one pool: every row lands exactly
//! once, no two borrowers ever share a slot, the pool never grows past
//! `max`, and nothing is left lent.

mod pool_support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pool_support::*;
use qwp_server::ServerConfig;
use sf_io_tokio::{PoolConfig, SenderPool};

const THREADS: i64 = 6;
const ROUNDS: i64 = 25;
const ROWS: i64 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_borrow_return_keeps_slots_exclusive_and_rows_exact() {
    let sf = tempfile::tempdir().unwrap();
    let srv = server(ServerConfig::local()).await;
    let pool = Arc::new(
        SenderPool::new(
            &format!(
                "ws::addr={};sf_dir={};sender_id=w;auto_flush=off;",
                srv.local_addr(),
                sf.path().display()
            ),
            PoolConfig {
                min: 0,
                max: 3,
                idle_timeout: Duration::from_secs(600),
                borrow_timeout: Duration::from_secs(30),
            },
        )
        .unwrap(),
    );
    // Slot ids lent right now: a second borrower of the same id is a bug.
    let lent: Arc<Mutex<HashSet<String>>> = Arc::default();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let pool = Arc::clone(&pool);
            let lent = Arc::clone(&lent);
            std::thread::spawn(move || {
                for r in 0..ROUNDS {
                    let mut s = pool.borrow().unwrap();
                    let id = s.slot_id().unwrap();
                    assert!(lent.lock().unwrap().insert(id.clone()), "{id} lent twice");
                    let base = (t * ROUNDS + r) * ROWS;
                    for i in base..base + ROWS {
                        s.table("t").unwrap().column_i64("n", i).unwrap();
                        s.at_micros(1_000_000 + i).unwrap();
                    }
                    // Every other round leaves its rows for the return to
                    // flush.
                    if r % 2 == 0 {
                        s.flush().unwrap();
                    }
                    assert!(lent.lock().unwrap().remove(&id));
                    drop(s);
                }
            })
        })
        .collect();
    block(|| {
        for t in threads {
            t.join().unwrap();
        }
    });
    let total = (THREADS * ROUNDS * ROWS) as u64;
    srv.wait_for_rows(total, WAIT).await.unwrap();
    assert_eq!(
        server_ns(&srv, "t"),
        (0..total as i64).collect::<Vec<_>>(),
        "every row exactly once"
    );
    let c = pool.counters();
    assert_eq!(c.lent, 0);
    assert!(c.created <= 3, "{c:?}");
    assert_eq!((c.discarded, c.retired, c.build_failures), (0, 0, 0));
    let mut dirs: Vec<String> = std::fs::read_dir(sf.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert!(
        dirs.iter()
            .all(|d| ["w-0", "w-1", "w-2", "w.pool"].contains(&d.as_str())),
        "{dirs:?}"
    );
    let pool = Arc::try_unwrap(pool).unwrap();
    block(|| pool.close());
}
