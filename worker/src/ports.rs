//! Host ports for guests' forwarded SSH: each job gets one no other job in this
//! process holds, and that nothing else was listening on when it was picked.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct PortPool {
    taken: Arc<Mutex<HashSet<u16>>>,
}

/// A port held until dropped.
pub struct PortLease {
    pub port: u16,
    pool: PortPool,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        if let Ok(mut taken) = self.pool.taken.lock() {
            taken.remove(&self.port);
        }
    }
}

impl PortPool {
    /// A free loopback port, asked of the kernel and not held by another job.
    pub fn take(&self) -> std::io::Result<PortLease> {
        for _ in 0..100 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let mut taken = self
                .taken
                .lock()
                .map_err(|_| std::io::Error::other("port pool lock poisoned"))?;
            if taken.insert(port) {
                return Ok(PortLease {
                    port,
                    pool: self.clone(),
                });
            }
        }
        Err(std::io::Error::other("no free port found"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_never_collide_and_are_returned() {
        let pool = PortPool::default();
        let leases: Vec<_> = (0..20).map(|_| pool.take().unwrap()).collect();
        let ports: HashSet<u16> = leases.iter().map(|l| l.port).collect();
        assert_eq!(ports.len(), 20);
        drop(leases);
        assert!(pool.taken.lock().unwrap().is_empty());
    }
}
